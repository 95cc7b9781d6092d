public import struct Foundation.URL

/// A server, a user and an app password: everything needed to talk to Nextcloud.
///
/// `description` and `debugDescription` never show the password.
public struct Credentials: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The server's base URL, e.g. `https://cloud.example.com` or `https://example.com/nextcloud`.
    public var server: URL
    /// The login name, sent with the app password.
    public var user: String
    /// An app password (never the account password, which costs the server ten times more per request).
    public var appPassword: String
    /// The user id in WebDAV paths (`/remote.php/dav/files/<userID>/`). Usually the login name;
    /// it differs where users log in with an e-mail address or an LDAP name (`cloud/user` tells).
    public var userID: String

    /// New credentials; `userID` defaults to the login name.
    public init(server: URL, user: String, appPassword: String, userID: String? = nil) {
        self.server = server
        self.user = user
        self.appPassword = appPassword
        self.userID = userID.flatMap { $0.isEmpty ? nil : $0 } ?? user
    }

    public var description: String {
        "Credentials(server: \(server.absoluteString), user: \(user)"
            + (userID == user ? "" : ", userID: \(userID)") + ", appPassword: <redacted>)"
    }
    public var debugDescription: String { description }
}

extension URL {
    /// The server URL without a trailing slash, query, fragment or user info.
    var normalizedServerBase: String {
        var text = absoluteString
        if let cut = text.firstIndex(where: { $0 == "?" || $0 == "#" }) { text = String(text[..<cut]) }
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }

    /// The path part of the server URL without a trailing slash ("" for a server at the root).
    var serverBasePath: String {
        var path = self.path(percentEncoded: false)
        while path.hasSuffix("/") { path.removeLast() }
        return path
    }
}

/// Percent-encoding of one path segment (everything but RFC 3986 unreserved characters).
enum PathEncoding {
    static func encodeSegment(_ segment: some StringProtocol) -> String {
        var out = ""
        for byte in segment.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(byte)))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }

    /// `/a b/c` → `/a%20b/c`; empty segments and `.`/`..` are dropped.
    static func encodePath(_ path: String) -> String {
        let segments = normalize(path).split(separator: "/")
        return segments.map { "/" + encodeSegment($0) }.joined()
    }

    /// A path relative to the user's root as `/a/b` (`/` for the root).
    static func normalize(_ path: String) -> String {
        let segments = path.split(separator: "/").filter { $0 != "." && $0 != ".." && !$0.isEmpty }
        return "/" + segments.joined(separator: "/")
    }

    /// A form body (`application/x-www-form-urlencoded`).
    static func formBody(_ fields: [(String, String)]) -> String {
        fields.map { "\(encodeSegment($0.0))=\(encodeSegment($0.1))" }.joined(separator: "&")
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
