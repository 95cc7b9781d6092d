internal import Foundation
import NIOCore

/// Where a request goes: the parts of an `http` or `https` URL that the connection and the request line need.
struct Target: Sendable {
    var secure: Bool
    /// The host to connect to, without the brackets of an IPv6 address.
    var host: String
    var port: Int
    /// The request target: the path (`/` when empty) and the query.
    var pathAndQuery: String

    init(_ url: String) throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", var host = components.host, !host.isEmpty
        else { throw BoundedHTTPError.badURL(url) }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        secure = scheme == "https"
        self.host = host
        port = components.port ?? (secure ? 443 : 80)
        guard (1...65535).contains(port) else { throw BoundedHTTPError.badURL(url) }
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        pathAndQuery = components.percentEncodedQuery.map { path + "?" + $0 } ?? path
    }

    var isIPAddress: Bool { (try? SocketAddress(ipAddress: host, port: 0)) != nil }

    /// The name sent for SNI and verified against the certificate; `nil` for an IP address, which NIOSSL then
    /// matches against the certificate's IP addresses.
    var sniName: String? { isIPAddress ? nil : host }

    /// The Host header: the host (an IPv6 address in brackets), and the port unless it is the scheme's default.
    var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (secure ? 443 : 80) ? name : "\(name):\(port)"
    }
}
