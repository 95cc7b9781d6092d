internal import NIOCore

extension PeerAddress {
    /// The IP bytes of a socket address (IPv4 or IPv6), or nil for other kinds.
    static func ipBytes(of address: SocketAddress) -> [UInt8]? {
        switch address {
        case .v4(let v4):
            var raw = v4.address.sin_addr.s_addr
            return withUnsafeBytes(of: &raw) { Array($0) }
        case .v6(let v6):
            var raw = v6.address.sin6_addr
            return withUnsafeBytes(of: &raw) { Array($0) }
        default:
            return nil
        }
    }

    /// `host:port` (IPv6 in brackets).
    public var hostAndPort: String { ip.count == 4 ? "\(host):\(port)" : "[\(host)]:\(port)" }

    /// The IP address as text.
    public var host: String {
        if ip.count == 4 { return ip.map(String.init).joined(separator: ".") }
        var groups: [String] = []
        for i in stride(from: 0, to: 16, by: 2) {
            groups.append(String(UInt16(ip[i]) << 8 | UInt16(ip[i + 1]), radix: 16))
        }
        return groups.joined(separator: ":")
    }

    /// Parses `a.b.c.d:port` or `[v6]:port`.
    public init?(hostAndPort text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard let address = try? SocketAddress(ipAddress: host, port: Int(port)), let ip = Self.ipBytes(of: address)
        else { return nil }
        self.init(ip: ip, port: port)
    }
}
