internal import CMiniUPnPc
internal import Dispatch
internal import Logging
internal import SignalingProtocol
internal import SwarmKit

/// Port mapping (docs/nat.md): PCP (``PCP``) at the default gateway first, NAT-PMP (``NATPMP``) when the gateway says
/// it speaks only that, then UPnP IGD through libminiupnpc: find the router, map its external TCP port to our
/// listening port for ``lease`` seconds (or what the router grants), renew at half, delete on exit. The calls block
/// (SSDP discovery waits up to its delay, each SOAP call is an HTTP round trip, PCP and NAT-PMP wait for a UDP
/// answer), so they run on a dispatch queue, never on the cooperative pool or an event loop.
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
        /// PCP names the external address in each mapping's answer, not once.
        case pcp(PCP)
        case natPMP(NATPMP, externalAddress: String)
    }

    /// Seconds asked for; renewed at half.
    static let lease: UInt32 = 1800
    /// How long SSDP discovery waits for answers.
    static let discoveryDelay: Int32 = 1000

    let backend: Backend

    /// "UPnP", "PCP" or "NAT-PMP", for logs.
    var protocolName: String {
        switch backend {
        case .upnp: "UPnP"
        case .pcp: "PCP"
        case .natPMP: "NAT-PMP"
        }
    }

    /// Finds the LAN's router and asks it to map `port`: first a PCP server at the default route's gateway (its first
    /// MAP answer is the mapping, so it is asked here), or a NAT-PMP one when the gateway answers PCP with NAT-PMP's
    /// "unsupported version"; then, when neither granted a mapping, a UPnP Internet Gateway Device that says it is
    /// connected; else the PCP server that refused (asked again later). `nil` when none answers; the mapping is `nil`
    /// when the router refused. The gateway first because it answers in one round trip, where SSDP discovery waits a
    /// second per device type it looks for (docs/nat.md, "PCP, then NAT-PMP, then UPnP").
    static func discover(port: UInt16) async -> (mapper: PortMapper, mapping: Mapping?)? {
        let found: Found? = await blocking { () -> Found? in
            var atGateway: Found?
            if let natPMP = NATPMP.ofDefaultGateway() {
                atGateway = Self.atGateway(PCP(gateway: natPMP.gateway), natPMP, port: port)
                switch atGateway {
                case .mapped(_, _?), .router: return atGateway
                case .mapped(_, nil), nil: break
                }
            }
            var igd = harp_igd()
            if harp_igd_find(&igd, discoveryDelay) == 0 { return .router(PortMapper(backend: .upnp(igd))) }
            return atGateway
        }
        switch found {
        case nil: return nil
        case .mapped(let mapper, let mapping): return (mapper, mapping)
        case .router(let mapper): return (mapper, await mapper.map(port: port))
        }
    }

    /// What discovery found: a router to ask for the mapping next, or (PCP) its first answer already.
    enum Found: Sendable {
        case router(PortMapper)
        case mapped(PortMapper, Mapping?)
    }

    /// PCP at the gateway, then NAT-PMP when the gateway answers with NAT-PMP's "unsupported version" (blocking).
    /// A PCP answer, even a refusal, makes the PCP mapper; no valid answer, or the gateway's "port unreachable", nil.
    static func atGateway(_ pcp: PCP, _ natPMP: NATPMP, port: UInt16) -> Found? {
        let answer = pcp.map(internalPort: port, externalPort: port, lifetime: lease)
        switch answer {
        case .mapping, .refused:
            return .mapped(PortMapper(backend: .pcp(pcp)), mapping(from: answer, internalPort: port))
        case .unsupportedVersion:
            guard let external = natPMP.externalAddress() else { return nil }
            return .router(PortMapper(backend: .natPMP(natPMP, externalAddress: external)))
        case .unreachable, nil:
            return nil
        }
    }

    /// The mapping a PCP answer grants, if it grants one (a lifetime, an external address).
    static func mapping(from answer: PCP.Answer?, internalPort: UInt16) -> Mapping? {
        guard case .mapping(let address?, let externalPort, let lifetime, _) = answer, lifetime > 0 else { return nil }
        return Mapping(
            externalAddress: address, externalPort: externalPort, internalPort: internalPort, lifetime: lifetime)
    }

    /// Maps an external port to `port` on this host: the same number first, then (UPnP, error 718: taken) two others;
    /// a PCP or NAT-PMP router picks the port itself. `nil` when the router refuses or names no usable external
    /// address.
    func map(port: UInt16) async -> Mapping? {
        switch backend {
        case .upnp(let igd):
            guard let external = externalAddress else { return nil }
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
        case .pcp(let client):
            let answer = await Self.blocking {
                client.map(internalPort: port, externalPort: port, lifetime: Self.lease)
            }
            return Self.mapping(from: answer, internalPort: port)
        case .natPMP(let client, _):
            guard let external = externalAddress,
                let granted = await Self.blocking({
                    client.map(internalPort: port, externalPort: port, lifetime: Self.lease)
                }), granted.lifetime > 0
            else { return nil }
            return Mapping(
                externalAddress: external, externalPort: granted.externalPort, internalPort: port,
                lifetime: granted.lifetime)
        }
    }

    /// Renews `mapping` (the same request again; PCP's with the same nonce); `false` when the router refuses or (PCP,
    /// NAT-PMP) moves it to another external port or address, which a new `map` then announces.
    func renew(_ mapping: Mapping) async -> Bool {
        switch backend {
        case .upnp(let igd):
            let status = await Self.blocking {
                withUnsafePointer(to: igd) {
                    harp_igd_map($0, mapping.externalPort, mapping.internalPort, Self.lease)
                }
            }
            return status == 0
        case .pcp(let client):
            let answer = await Self.blocking {
                client.map(internalPort: mapping.internalPort, externalPort: mapping.externalPort, lifetime: Self.lease)
            }
            let renewed = Self.mapping(from: answer, internalPort: mapping.internalPort)
            return renewed?.externalPort == mapping.externalPort
                && renewed?.externalAddress == mapping.externalAddress
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
        case .pcp(let client):
            // RFC 6887 §15: a deletion is the MAP request of the mapping (same nonce, protocol and internal port) with
            // lifetime 0, answered with lifetime 0.
            let answer = await Self.blocking {
                client.map(internalPort: mapping.internalPort, externalPort: mapping.externalPort, lifetime: 0)
            }
            guard case .mapping(_, _, 0, _) = answer else { return false }
            return true
        case .natPMP(let client, _):
            // RFC 6886 §3.4: a deletion asks for external port 0 and lifetime 0.
            return await Self.blocking {
                client.map(internalPort: mapping.internalPort, externalPort: 0, lifetime: 0)
            } != nil
        }
    }

    /// The router's external address if it is an IP address (checked as a peer would parse it): UPnP's and NAT-PMP's,
    /// asked once; nil for PCP, which names it in each mapping (``PCP/parse(_:nonce:internalPort:lifetime:)`` checks
    /// it there).
    var externalAddress: String? {
        let text: String
        switch backend {
        case .pcp:
            return nil
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
