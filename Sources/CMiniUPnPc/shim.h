// libminiupnpc (UPnP IGD client) behind three small functions, so the Swift side sees neither the library's linked
// lists nor the signature of UPNP_GetValidIGD, which changed in API version 18 (miniupnpc 2.2.8).
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <stdio.h>
#include <string.h>

/// The router's WAN connection service, found by harp_igd_find.
typedef struct {
    char controlURL[512];
    char serviceType[256];
    /// This host's address on the router's LAN (the mapping's internal client).
    char lanAddress[64];
    /// The router's external address ("" when it did not say).
    char externalAddress[64];
} harp_igd;

/// Looks for an Internet Gateway Device on the LAN (SSDP, waiting at most delay_ms). 0 when one that says it is
/// connected was found; -1 when no UPnP device answered; -2 when none is a connected IGD.
static inline int harp_igd_find(harp_igd *igd, int delay_ms) {
    memset(igd, 0, sizeof *igd);
    int error = 0;
    struct UPNPDev *devices = upnpDiscover(delay_ms, NULL, NULL, 0, 0, 2, &error);
    if (devices == NULL) return -1;
    struct UPNPUrls urls;
    struct IGDdatas data;
    memset(&urls, 0, sizeof urls);
    memset(&data, 0, sizeof data);
#if defined(MINIUPNPC_API_VERSION) && MINIUPNPC_API_VERSION >= 18
    char wan[64];
    int status = UPNP_GetValidIGD(devices, &urls, &data, igd->lanAddress, sizeof igd->lanAddress, wan, sizeof wan);
#else
    int status = UPNP_GetValidIGD(devices, &urls, &data, igd->lanAddress, sizeof igd->lanAddress);
#endif
    freeUPNPDevlist(devices);
    if (status != 1) {
        if (status != 0) FreeUPNPUrls(&urls);
        return -2;
    }
    snprintf(igd->controlURL, sizeof igd->controlURL, "%s", urls.controlURL ? urls.controlURL : "");
    snprintf(igd->serviceType, sizeof igd->serviceType, "%s", data.first.servicetype);
    FreeUPNPUrls(&urls);
    char external[40] = {0};
    if (UPNP_GetExternalIPAddress(igd->controlURL, igd->serviceType, external) == 0) {
        snprintf(igd->externalAddress, sizeof igd->externalAddress, "%s", external);
    }
    return 0;
}

/// Asks for (or renews) TCP external_port -> lanAddress:internal_port for lease_seconds. 0 on success, else the
/// UPnP error code (718: the external port is mapped to another client).
static inline int harp_igd_map(const harp_igd *igd, unsigned short external_port, unsigned short internal_port,
                               unsigned int lease_seconds) {
    char ext[8], in[8], lease[12];
    snprintf(ext, sizeof ext, "%u", external_port);
    snprintf(in, sizeof in, "%u", internal_port);
    snprintf(lease, sizeof lease, "%u", lease_seconds);
    return UPNP_AddPortMapping(igd->controlURL, igd->serviceType, ext, in, igd->lanAddress, "harp", "TCP", NULL,
                               lease);
}

/// Deletes the TCP mapping of external_port. 0 on success.
static inline int harp_igd_unmap(const harp_igd *igd, unsigned short external_port) {
    char ext[8];
    snprintf(ext, sizeof ext, "%u", external_port);
    return UPNP_DeletePortMapping(igd->controlURL, igd->serviceType, ext, "TCP", NULL);
}
