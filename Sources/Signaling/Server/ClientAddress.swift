import NIOCore
import SignalingProtocol

/// The unit that connection caps, quotas, failure counts and bans apply to: an IPv4 address as written
/// (`203.0.113.9`), or the /64 prefix of an IPv6 address (`2001:db8:1:2::/64`), because one IPv6 host usually holds a
/// whole /64 and could otherwise take a fresh address for every connection. An IPv4-mapped IPv6 address
/// (`::ffff:203.0.113.9`, seen on a dual-stack listener) is its IPv4 address.
enum ClientAddress {
    /// The key of a socket's peer; `unknown` when the channel has no IP peer (it then shares one budget).
    static func key(of address: SocketAddress?) -> String {
        switch address {
        case .v4?:
            return address?.ipAddress ?? "unknown"
        case .v6(let v6)?:
            var storage = v6.address.sin6_addr
            let bytes = withUnsafeBytes(of: &storage) { Array($0) }
            return key(ipv6: bytes)
        default:
            return "unknown"
        }
    }

    /// The key of an address written as text (as in `X-Forwarded-For`); `nil` when it is not an IP address.
    static func key(text: String) -> String? {
        parse(text).map { key(of: $0) }
    }

    /// An IP address written as text, trimmed of spaces; `nil` for anything else.
    static func parse(_ text: String) -> SocketAddress? {
        let trimmed = text.trimmingWhitespace()
        guard !trimmed.isEmpty, trimmed.utf8.count <= 64 else { return nil }
        return try? SocketAddress(ipAddress: trimmed, port: 0)
    }

    /// The whole address of a socket (an IPv4-mapped IPv6 address as IPv4), with its port when `port` is set: what
    /// the server tells the client as its reflexive address. `nil` for a channel without an IP peer.
    static func observed(_ address: SocketAddress?, port: Bool) -> ObservedAddress? {
        guard let address, var text = address.ipAddress else { return nil }
        if case .v6 = address, text.lowercased().hasPrefix("::ffff:"), !text.dropFirst(7).contains(":") {
            text = String(text.dropFirst(7))
        }
        let number = port ? address.port.flatMap { UInt16(exactly: $0) } : nil
        return ObservedAddress(address: text, port: number)
    }

    private static func key(ipv6 bytes: [UInt8]) -> String {
        guard bytes.count == 16 else { return "unknown" }
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
            return "\(bytes[12]).\(bytes[13]).\(bytes[14]).\(bytes[15])"
        }
        var groups: [String] = []
        for index in stride(from: 0, to: 8, by: 2) {
            groups.append(String(UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1]), radix: 16))
        }
        return groups.joined(separator: ":") + "::/64"
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { $0 != " " && $0 != "\t" }),
            let last = scalars.lastIndex(where: { $0 != " " && $0 != "\t" })
        else { return "" }
        return String(scalars[first...last])
    }
}
