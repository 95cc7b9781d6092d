internal import Foundation
internal import NIOCore

/// NAT-PMP (RFC 6886), the port mapping protocol of Apple routers and of miniupnpd, for when the LAN has no UPnP IGD
/// (docs/nat.md): two UDP messages to the default gateway's port 5351, the external address and a TCP mapping.
///
/// Written here rather than through libnatpmp: the protocol is two fixed-size messages, and every answer is hostile
/// input checked in one place (``parse(_:opcode:)``): only from the gateway (a connected UDP socket drops datagrams
/// from anyone else), exactly the length of its message, version 0, the answer to the opcode asked, result 0, and
/// values a mapping can hold. Anything else is skipped, at most ``GatewayUDP/maxDatagrams`` per request; the waits are bounded
/// (``GatewayUDP/retryDelays``, under 2 s in all, where RFC 6886 allows a minute: a mapping that takes longer is not worth the
/// wait, and the join goes out without it).
struct NATPMP: Sendable {
    /// The gateway's IPv4 address and port (5351; tests use a loopback responder).
    let gateway: String
    let port: Int

    /// What the gateway answered.
    enum Answer: Sendable, Equatable {
        /// Its external IPv4 address (dotted), and its epoch (seconds since its mappings were reset).
        case externalAddress(String, epoch: UInt32)
        /// The TCP mapping: external port and the lifetime granted (seconds; 0 for a deletion).
        case mapping(internalPort: UInt16, externalPort: UInt16, lifetime: UInt32, epoch: UInt32)
        /// A result code other than 0 (1 unsupported version, 2 refused, 3 network failure, 4 out of resources,
        /// 5 unsupported opcode).
        case refused(UInt16)
    }

    /// The longest NAT-PMP answer (a mapping's); a longer datagram is refused by its length.
    static let maxMessage = 16
    static let defaultPort = 5351

    init(gateway: String, port: Int = NATPMP.defaultPort) {
        self.gateway = gateway
        self.port = port
    }

    /// A client of the default IPv4 gateway (from `/proc/net/route`); nil when there is none.
    static func ofDefaultGateway() -> NATPMP? {
        guard let table = try? String(contentsOfFile: "/proc/net/route", encoding: .utf8) else { return nil }
        return defaultGateway(inRouteTable: table).map { NATPMP(gateway: $0) }
    }

    // MARK: Messages

    /// §3.2: version 0, opcode 0.
    static let externalAddressRequest: [UInt8] = [0, 0]

    /// §3.3: version 0, opcode 2 (TCP), reserved, internal port, suggested external port, lifetime (all big-endian).
    static func mappingRequest(internalPort: UInt16, externalPort: UInt16, lifetime: UInt32) -> [UInt8] {
        [0, 2, 0, 0] + GatewayUDP.bigEndian(internalPort) + GatewayUDP.bigEndian(externalPort)
            + GatewayUDP.bigEndian(lifetime)
    }

    /// The answer in `datagram` to a request of `opcode` (0 or 2), or nil when it is not one: a datagram of another
    /// length, version or opcode, or (result 0) an address that is not a unicast IPv4 address, a mapping of another
    /// internal port than asked (checked by the caller) or of external port 0 with a lifetime.
    static func parse(_ datagram: [UInt8], opcode: UInt8) -> Answer? {
        // Every answer starts with version 0, opcode 128 + the request's, the result code and the epoch: 8 bytes.
        guard datagram.count >= 8, datagram[0] == 0, datagram[1] == 128 + opcode else { return nil }
        let result = GatewayUDP.uint16(datagram, at: 2)
        let epoch = GatewayUDP.uint32(datagram, at: 4)
        switch opcode {
        case 0:
            // §3.2: 12 bytes. An error answer may be the 8-byte header alone (§3.5).
            if result != 0 { return datagram.count == 8 || datagram.count == 12 ? .refused(result) : nil }
            guard datagram.count == 12 else { return nil }
            let address = Array(datagram[8..<12])
            // 0.0.0.0 means the router has no external address yet (§3.2); multicast, broadcast and loopback are not
            // addresses a peer can dial.
            guard address != [0, 0, 0, 0], address[0] != 127, address[0] < 224 else { return nil }
            return .externalAddress(address.map(String.init).joined(separator: "."), epoch: epoch)
        case 2:
            if result != 0 { return datagram.count == 8 || datagram.count == 16 ? .refused(result) : nil }
            guard datagram.count == 16 else { return nil }
            let internalPort = GatewayUDP.uint16(datagram, at: 8)
            let externalPort = GatewayUDP.uint16(datagram, at: 10)
            let lifetime = GatewayUDP.uint32(datagram, at: 12)
            guard internalPort != 0, externalPort != 0 || lifetime == 0 else { return nil }
            return .mapping(internalPort: internalPort, externalPort: externalPort, lifetime: lifetime, epoch: epoch)
        default:
            return nil
        }
    }

    /// The gateway of the IPv4 default route in a `/proc/net/route` table (hex, host byte order), if any. Lines that
    /// do not parse are skipped.
    static func defaultGateway(inRouteTable table: String) -> String? {
        for line in table.split(separator: "\n").dropFirst().prefix(1024) {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 4, fields[1] == "00000000", fields[2].count == 8,
                let gateway = UInt32(fields[2], radix: 16), gateway != 0,
                let flags = UInt32(fields[3], radix: 16), flags & 0x3 == 0x3  // RTF_UP | RTF_GATEWAY
            else { continue }
            // Little-endian on the machines harp runs on: the first octet is the low byte.
            let octets = (0..<4).map { (gateway >> (8 * $0)) & 0xFF }
            return octets.map(String.init).joined(separator: ".")
        }
        return nil
    }

    // MARK: Requests (blocking: run off the cooperative pool)

    /// The gateway's external address, or nil when it does not answer, refuses or answers nonsense.
    func externalAddress() -> String? {
        guard case .externalAddress(let address, _) = exchange(Self.externalAddressRequest, opcode: 0) else {
            return nil
        }
        return address
    }

    /// Asks for TCP `externalPort` (a suggestion: the gateway picks) to this host's `internalPort` for `lifetime`
    /// seconds (0 deletes the mapping). The granted external port and lifetime, or nil.
    func map(internalPort: UInt16, externalPort: UInt16, lifetime: UInt32) -> (externalPort: UInt16, lifetime: UInt32)?
    {
        let request = Self.mappingRequest(internalPort: internalPort, externalPort: externalPort, lifetime: lifetime)
        // An answer about another internal port is not ours: skipped, as a datagram that does not parse is.
        let answer = exchange(request, opcode: 2) { answer in
            if case .mapping(let port, _, _, _) = answer { return port == internalPort }
            return true
        }
        guard case .mapping(_, let external, let granted, _) = answer else { return nil }
        return (external, granted)
    }

    /// Sends `request` and waits for its answer (the first that parses and that `accept` takes), retrying per
    /// ``GatewayUDP/retryDelays``.
    func exchange(_ request: [UInt8], opcode: UInt8, accept: (Answer) -> Bool = { _ in true }) -> Answer? {
        let outcome = GatewayUDP.exchange(gateway: gateway, port: port, maxMessage: Self.maxMessage) { _ in
            request
        } parse: { datagram in
            Self.parse(datagram, opcode: opcode).flatMap { accept($0) ? $0 : nil }
        }
        guard case .answer(let answer) = outcome else { return nil }
        return answer
    }

}
