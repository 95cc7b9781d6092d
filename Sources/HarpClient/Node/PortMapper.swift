internal import CMiniUPnPc
internal import Dispatch
internal import Logging
internal import SignalingProtocol
internal import SwarmKit

/// Port mapping (docs/nat.md): UPnP IGD through libminiupnpc first, then NAT-PMP (``NATPMP``) at the default
/// gateway: find the router, map its external TCP port to our listening port for ``lease`` seconds (or what the router
/// grants), renew at half, delete on exit. The calls block (SSDP discovery waits up to its delay, each SOAP call is an
/// HTTP round trip, NAT-PMP waits for a UDP answer), so they run on a dispatch queue, never on the cooperative pool or
/// an event loop.
///
/// Everything the router answers is checked: its external address must be an IP address (a hostile or broken
/// router's text is refused, not advertised).
struct PortMapper: Sendable {
    /// What the router granted.
    struct Mapping: Sendable, Equatable {
        let externalAddress: String
        let externalPort: UInt16
        let internalPort: UInt16
        /// Seconds the router granted (renewed at half).
        var lifetime: UInt32 = PortMapper.lease
    }

    /// The protocol a router answered.
    enum Backend: Sendable {
        case upnp(harp_igd)
        case natPMP(NATPMP, externalAddress: String)
    }

    /// Seconds asked for; renewed at half.
    static let lease: UInt32 = 1800
    /// How long SSDP discovery waits for answers.
    static let discoveryDelay: Int32 = 1000

    let backend: Backend

    /// "UPnP" or "NAT-PMP", for logs.
    var protocolName: String {
        switch backend {
        case .upnp: "UPnP"
        case .natPMP: "NAT-PMP"
        }
    }

    /// Finds the LAN's router: a UPnP Internet Gateway Device that says it is connected, else a NAT-PMP gateway (the
    /// default route's) that names its external address; `nil` when neither answers.
    static func discover() async -> PortMapper? {
        await blocking {
            var igd = harp_igd()
            if harp_igd_find(&igd, discoveryDelay) == 0 { return PortMapper(backend: .upnp(igd)) }
            guard let natPMP = NATPMP.ofDefaultGateway(), let external = natPMP.externalAddress() else { return nil }
            return PortMapper(backend: .natPMP(natPMP, externalAddress: external))
        }
    }

    /// Maps an external port to `port` on this host: the same number first, then (UPnP, error 718: taken) two others;
    /// a NAT-PMP router picks the port itself. `nil` when the router refuses or names no usable external address.
    func map(port: UInt16) async -> Mapping? {
        guard let external = externalAddress else { return nil }
        switch backend {
        case .upnp(let igd):
            var choices: [UInt16] = [port]
            for _ in 0..<2 { choices.append(UInt16.random(in: 20000...60000)) }
            for choice in choices {
                let status = await Self.blocking {
                    withUnsafePointer(to: igd) { harp_igd_map($0, choice, port, Self.lease) }
                }
                if status == 0 { return Mapping(externalAddress: external, externalPort: choice, internalPort: port) }
                if status != 718 { return nil }
            }
            return nil
        case .natPMP(let client, _):
            guard
                let granted = await Self.blocking({
                    client.map(internalPort: port, externalPort: port, lifetime: Self.lease)
                }), granted.lifetime > 0
            else { return nil }
            return Mapping(
                externalAddress: external, externalPort: granted.externalPort, internalPort: port,
                lifetime: granted.lifetime)
        }
    }

    /// Renews `mapping` (the same request again); `false` when the router refuses or (NAT-PMP) moves it to another
    /// external port, which a new `map` then announces.
    func renew(_ mapping: Mapping) async -> Bool {
        switch backend {
        case .upnp(let igd):
            let status = await Self.blocking {
                withUnsafePointer(to: igd) {
                    harp_igd_map($0, mapping.externalPort, mapping.internalPort, Self.lease)
                }
            }
            return status == 0
        case .natPMP(let client, _):
            let granted = await Self.blocking {
                client.map(internalPort: mapping.internalPort, externalPort: mapping.externalPort, lifetime: Self.lease)
            }
            return granted?.externalPort == mapping.externalPort && (granted?.lifetime ?? 0) > 0
        }
    }

    /// Deletes `mapping`; `false` when the router refuses (it expires at the end of its lease anyway).
    func unmap(_ mapping: Mapping) async -> Bool {
        switch backend {
        case .upnp(let igd):
            return await Self.blocking { withUnsafePointer(to: igd) { harp_igd_unmap($0, mapping.externalPort) } } == 0
        case .natPMP(let client, _):
            // RFC 6886 §3.4: a deletion asks for external port 0 and lifetime 0.
            return await Self.blocking {
                client.map(internalPort: mapping.internalPort, externalPort: 0, lifetime: 0)
            } != nil
        }
    }

    /// The router's external address if it is an IP address (checked as a peer would parse it).
    var externalAddress: String? {
        let text: String
        switch backend {
        case .upnp(let igd):
            text = withUnsafeBytes(of: igd.externalAddress) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
        case .natPMP(_, let address):
            text = address
        }
        guard !text.isEmpty, PeerAddress(hostAndPort: text.contains(":") ? "[\(text)]:1" : "\(text):1") != nil else {
            return nil
        }
        return text
    }

    private static func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DispatchQueue.global(qos: .utility).async { continuation.resume(returning: body()) }
        }
    }
}
