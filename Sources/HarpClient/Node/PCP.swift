internal import Foundation
internal import NIOCore

/// PCP (RFC 6887), the successor of NAT-PMP on the same UDP port 5351 of the default gateway (docs/nat.md): one MAP
/// request asks for a TCP mapping and its answer names the external address and port, so one round trip does what
/// NAT-PMP's two messages do.
///
/// Every answer is hostile input checked in one place (``parse(_:nonce:internalPort:lifetime:)``): only from the
/// gateway (a connected UDP socket drops datagrams from anyone else), 60 to 1100 bytes and a multiple of 4, version 2,
/// the R bit set, opcode MAP, our mapping nonce, protocol TCP and our internal port; result 0 (else
/// ``Answer/refused(_:)``), an external port and a unicast IPv4-mapped external address when a lifetime is granted,
/// the lifetime at most what was asked, and options that fit the datagram, none of them a mandatory one (harp sends
/// no options, so it knows none to process). Anything else is skipped, at most ``GatewayUDP/maxDatagrams`` per try, with
/// NAT-PMP's bounded waits (``GatewayUDP/retryDelays``, where RFC 6887 §8.1.1 starts at 3 s and sets no limit).
///
/// A router that speaks only NAT-PMP answers a PCP request with NAT-PMP's "unsupported version" (RFC 6887 §9, RFC
/// 6886 §3.5): ``Answer/unsupportedVersion``, and `PortMapper` falls back to ``NATPMP``.
struct PCP: Sendable {
    /// The gateway's IPv4 address and port (5351; tests use a loopback responder).
    let gateway: String
    let port: Int
    /// The mapping nonce (§11.1): random, 12 bytes, the same in the renewals and the deletion of a mapping, so the
    /// router knows them for this client's; an answer with another nonce is not ours.
    let nonce: [UInt8]

    /// What the gateway answered.
    enum Answer: Sendable, Equatable {
        /// The mapping: its external address (dotted IPv4; nil in the answer to a deletion, which names none that
        /// matters), external port and lifetime (seconds, at most what was asked; 0 for a deletion), and the epoch.
        case mapping(externalAddress: String?, externalPort: UInt16, lifetime: UInt32, epoch: UInt32)
        /// A PCP result code other than 0 (§7.4: 2 not authorized, 7 network failure, 8 no resources, 11 cannot
        /// provide external, ...).
        case refused(UInt8)
        /// A NAT-PMP answer with result 1: the router speaks only NAT-PMP.
        case unsupportedVersion
        /// No answer but the gateway's ICMP "port unreachable" (a connected UDP socket reports it as
        /// `ECONNREFUSED`): nothing listens on its port 5351, neither PCP nor NAT-PMP. Never from ``parse``.
        case unreachable
    }

    static let version: UInt8 = 2
    static let mapOpcode: UInt8 = 1
    static let tcp: UInt8 = 6
    /// §7: a PCP message is at most 1100 bytes.
    static let maxMessage = 1100
    /// §7.1 and §7.2: the common header; §11.1: the MAP payload.
    static let headerLength = 24
    static let mapLength = 36

    init(gateway: String, port: Int = NATPMP.defaultPort) {
        self.gateway = gateway
        self.port = port
        var generator = SystemRandomNumberGenerator()
        nonce = (0..<12).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    // MARK: Messages

    /// The MAP request (§7.1, §11.1): version 2, R 0 and opcode 1, 16 reserved bits, the requested lifetime, the
    /// client's address (16 bytes, IPv4-mapped); then the nonce, protocol 6, 24 reserved bits, internal port,
    /// suggested external port and suggested external address (::ffff:0.0.0.0, "IPv4, no preference", §5). All
    /// big-endian, 60 bytes, no options.
    static func mappingRequest(
        clientAddress: [UInt8], nonce: [UInt8], internalPort: UInt16, externalPort: UInt16, lifetime: UInt32
    ) -> [UInt8] {
        precondition(clientAddress.count == 16 && nonce.count == 12)
        let header: [UInt8] = [version, mapOpcode, 0, 0] + GatewayUDP.bigEndian(lifetime) + clientAddress
        let payload: [UInt8] =
            nonce + [tcp, 0, 0, 0] + GatewayUDP.bigEndian(internalPort) + GatewayUDP.bigEndian(externalPort)
        return header + payload + ipv4Mapped([0, 0, 0, 0])
    }

    /// `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2), the form PCP gives IPv4 addresses (§5).
    static func ipv4Mapped(_ address: [UInt8]) -> [UInt8] {
        [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF] + address
    }

    /// The answer in `datagram` to our MAP request for `internalPort` with `nonce` and `lifetime`, or nil when it is
    /// not one (see the type's summary for the checks).
    static func parse(_ datagram: [UInt8], nonce: [UInt8], internalPort: UInt16, lifetime asked: UInt32) -> Answer? {
        // RFC 6887 §9: a NAT-PMP server answers any other version with its own "unsupported version" answer: version
        // 0, opcode 128 + the request's, result 1 (RFC 6886 §3.5; the 8-byte header, or the full answer's length).
        if datagram.count >= 8, datagram.count <= 16, datagram.count % 4 == 0, datagram[0] == 0, datagram[1] >= 128 {
            return datagram[2] == 0 && datagram[3] == 1 ? .unsupportedVersion : nil
        }
        // §7: a multiple of 4 bytes, at most 1100; §7.2: version 2, R set, the opcode asked.
        guard datagram.count >= headerLength + mapLength, datagram.count <= maxMessage, datagram.count % 4 == 0,
            datagram[0] == version, datagram[1] == 0x80 | mapOpcode
        else { return nil }
        let result = datagram[3]
        let lifetime = min(GatewayUDP.uint32(datagram, at: 4), asked)
        let epoch = GatewayUDP.uint32(datagram, at: 8)
        // §11.1: the MAP payload, copied from the request even in an error answer (§7.2); another nonce, protocol or
        // internal port is another request's answer (§11.3 and §11.4: silently ignored).
        let map = headerLength
        guard Array(datagram[map..<map + 12]) == nonce, datagram[map + 12] == tcp,
            GatewayUDP.uint16(datagram, at: map + 16) == internalPort
        else { return nil }
        guard optionsAreAcceptable(datagram, from: headerLength + mapLength) else { return nil }
        guard result == 0 else { return .refused(result) }
        let externalPort = GatewayUDP.uint16(datagram, at: map + 18)
        let address = Array(datagram[map + 20..<map + 36])
        guard lifetime > 0 else {
            return .mapping(externalAddress: nil, externalPort: externalPort, lifetime: 0, epoch: epoch)
        }
        // A granted mapping names its external port and a unicast IPv4 address (not 0.0.0.0, loopback, multicast or
        // broadcast) in IPv4-mapped form: harp asks for TCP over IPv4 only.
        guard externalPort != 0, address.prefix(10).allSatisfy({ $0 == 0 }), address[10] == 0xFF, address[11] == 0xFF
        else { return nil }
        let v4 = Array(address.suffix(4))
        guard v4 != [0, 0, 0, 0], v4[0] != 127, v4[0] < 224 else { return nil }
        return .mapping(
            externalAddress: v4.map(String.init).joined(separator: "."), externalPort: externalPort,
            lifetime: lifetime, epoch: epoch)
    }

    /// §7.3: each option is a 4-byte header (code, reserved, length) and its data padded to 4 bytes, and must fit in
    /// the datagram. Optional ones (code 128 and up) that harp does not know are skipped (§7.3); a mandatory one (0 to
    /// 127: THIRD_PARTY, PREFER_FAILURE, FILTER, or one this client never heard of) is refused, as harp sent none.
    static func optionsAreAcceptable(_ datagram: [UInt8], from start: Int) -> Bool {
        var offset = start
        while offset < datagram.count {
            guard datagram.count - offset >= 4 else { return false }
            let code = datagram[offset]
            let length = Int(GatewayUDP.uint16(datagram, at: offset + 2))
            let padded = (length + 3) & ~3
            guard padded <= datagram.count - offset - 4, code >= 128 else { return false }
            offset += 4 + padded
        }
        return true
    }

    // MARK: Requests (blocking: run off the cooperative pool)

    /// Asks for TCP `externalPort` (a suggestion: the gateway picks) to this host's `internalPort` for `lifetime`
    /// seconds (0 deletes the mapping), with this client's nonce. The first valid answer, ``Answer/unreachable`` at
    /// once when the gateway says nothing listens there, or nil when no valid answer came.
    func map(internalPort: UInt16, externalPort: UInt16, lifetime: UInt32) -> Answer? {
        // The socket is connected: its local address is the one the gateway sees, which the request must name (§8.1;
        // a mismatch is ADDRESS_MISMATCH).
        let outcome = GatewayUDP.exchange(gateway: gateway, port: port, maxMessage: Self.maxMessage) { fd in
            Self.localIPv4(of: fd).map { local in
                Self.mappingRequest(
                    clientAddress: Self.ipv4Mapped(local), nonce: nonce, internalPort: internalPort,
                    externalPort: externalPort, lifetime: lifetime)
            }
        } parse: { datagram in
            Self.parse(datagram, nonce: nonce, internalPort: internalPort, lifetime: lifetime)
        }
        switch outcome {
        case .answer(let answer): return answer
        case .unreachable: return .unreachable
        case .none: return nil
        }
    }

    /// The IPv4 address a connected socket sends from.
    private static func localIPv4(of fd: Int32) -> [UInt8]? {
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0, local.sin_family == sa_family_t(AF_INET) else { return nil }
        return GatewayUDP.bigEndian(UInt32(bigEndian: local.sin_addr.s_addr))
    }

}
