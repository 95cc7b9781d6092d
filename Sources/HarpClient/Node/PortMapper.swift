internal import CMiniUPnPc
internal import Dispatch
internal import Logging
internal import SignalingProtocol
internal import SwarmKit

/// UPnP IGD port mapping through libminiupnpc (docs/nat.md): find the router, map its external TCP port to our
/// listening port for ``lease`` seconds, renew at half the lease, delete on exit. The library's calls block (SSDP
/// discovery waits up to its delay, each SOAP call is an HTTP round trip), so they run on a dispatch queue, never on
/// the cooperative pool or an event loop.
///
/// Everything the router answers is checked: its external address must be an IP address (a hostile or broken
/// router's text is refused, not advertised).
struct PortMapper: Sendable {
    /// What the router granted.
    struct Mapping: Sendable, Equatable {
        let externalAddress: String
        let externalPort: UInt16
        let internalPort: UInt16
    }

    /// Seconds asked for; renewed at half.
    static let lease: UInt32 = 1800
    /// How long SSDP discovery waits for answers.
    static let discoveryDelay: Int32 = 1000

    private let igd: harp_igd

    private init(igd: harp_igd) {
        self.igd = igd
    }

    /// Finds the LAN's Internet Gateway Device; `nil` when none answers or none says it is connected.
    static func discover() async -> PortMapper? {
        await blocking {
            var igd = harp_igd()
            guard harp_igd_find(&igd, discoveryDelay) == 0 else { return nil }
            return PortMapper(igd: igd)
        }
    }

    /// Maps an external port to `port` on this host: the same number first, then two others if that one is taken
    /// (UPnP error 718). `nil` when the router refuses or names no usable external address.
    func map(port: UInt16) async -> Mapping? {
        guard let external = externalAddress else { return nil }
        let igd = self.igd
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
    }

    /// Renews `mapping` (the same request again); `false` when the router refuses.
    func renew(_ mapping: Mapping) async -> Bool {
        let igd = self.igd
        let status = await Self.blocking {
            withUnsafePointer(to: igd) {
                harp_igd_map($0, mapping.externalPort, mapping.internalPort, Self.lease)
            }
        }
        return status == 0
    }

    /// Deletes `mapping`; `false` when the router refuses (it expires at the end of its lease anyway).
    func unmap(_ mapping: Mapping) async -> Bool {
        let igd = self.igd
        return await Self.blocking { withUnsafePointer(to: igd) { harp_igd_unmap($0, mapping.externalPort) } } == 0
    }

    /// The router's external address if it is an IP address (checked as a peer would parse it).
    var externalAddress: String? {
        let text = withUnsafeBytes(of: igd.externalAddress) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
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
