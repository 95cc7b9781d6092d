/// One address a peer says it may be reached at, marked with where it came from (docs/nat.md, docs/signaling.md
/// "Candidates"). Written in a `join`'s `addresses` as `host:port` for a local candidate (what every client has always
/// announced, so older peers keep dialling it) and `kind@host:port` for the others: `mapped@203.0.113.7:41000`,
/// `reflexive@[2001:db8::7]:41000`.
///
/// Everything here is parsed from peers: a text over ``maxLength`` bytes, an unknown shape, a port of 0 or a kind
/// that is not 1–16 lowercase letters is refused (`nil`), never trapped on. Kinds this version does not know are
/// kept (a newer peer may announce them) and dialled last.
public struct Candidate: Hashable, Sendable, CustomStringConvertible {
    /// Where a candidate came from.
    public struct Kind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        /// The listening address as the peer's own interface has it (on the same subnet, the way to reach it).
        public static let local = Kind(rawValue: "local")
        /// The peer's address as the signaling server saw its connection come from, with the listening port.
        public static let reflexive = Kind(rawValue: "reflexive")
        /// A port mapping the peer's router granted (UPnP IGD or NAT-PMP).
        public static let mapped = Kind(rawValue: "mapped")

        public var description: String { rawValue }
    }

    /// Bytes of the longest text accepted (an IPv6 address in brackets, a port and a kind fit in 80).
    public static let maxLength = 80

    public var kind: Kind
    /// An IP address as text (IPv6 without brackets) or a host name.
    public var host: String
    public var port: UInt16

    public init(kind: Kind, host: String, port: UInt16) {
        self.kind = kind
        self.host = host
        self.port = port
    }

    /// Parses `host:port`, `[v6]:port` or `kind@` followed by either; `nil` for anything else.
    public init?(text: String) {
        guard !text.isEmpty, text.utf8.count <= Self.maxLength else { return nil }
        var rest = Substring(text)
        var kind = Kind.local
        if let at = rest.firstIndex(of: "@") {
            let name = rest[..<at]
            guard (1...16).contains(name.utf8.count), name.utf8.allSatisfy({ $0 >= 0x61 && $0 <= 0x7A }) else {
                return nil
            }
            kind = Kind(rawValue: String(name))
            rest = rest[rest.index(after: at)...]
        }
        guard let colon = rest.lastIndex(of: ":"), let port = UInt16(rest[rest.index(after: colon)...]), port != 0
        else { return nil }
        var host = rest[..<colon]
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else { return nil }
            host = host.dropFirst().dropLast()
        } else if host.contains(":") {
            return nil
        }
        guard !host.isEmpty,
            host.utf8.allSatisfy({ byte in
                (0x30...0x39).contains(byte) || (0x61...0x7A).contains(byte) || (0x41...0x5A).contains(byte)
                    || byte == 0x2E || byte == 0x3A || byte == 0x2D || byte == 0x25
            })
        else { return nil }
        self.init(kind: kind, host: String(host), port: port)
    }

    /// `host:port` (`[v6]:port`), without the kind.
    public var hostAndPort: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The text announced in `join`: the plain address for a local candidate, `kind@address` for the others.
    public var text: String {
        kind == .local ? hostAndPort : "\(kind.rawValue)@\(hostAndPort)"
    }

    public var description: String { text }
}

/// The address and port the signaling server saw a client's connection come from (the client's reflexive address,
/// as a STUN server reports it). Behind a trusted proxy the server knows the forwarded address only, not its port.
public struct ObservedAddress: Hashable, Sendable {
    /// An IP address as text (IPv6 without brackets; an IPv4-mapped IPv6 address as IPv4).
    public var address: String
    /// The connection's source port as the server saw it; `nil` when a proxy forwarded the address.
    public var port: UInt16?

    public init(address: String, port: UInt16?) {
        self.address = address
        self.port = port
    }

    /// Seen on loopback: the server runs on this host, and the observation says nothing about a NAT.
    public var isLoopback: Bool { address.hasPrefix("127.") || address == "::1" }

    /// An IPv6 address (the server reports an IPv4-mapped one as IPv4): the connection it was seen on went over IPv6.
    public var isIPv6: Bool { address.contains(":") }

    /// Checks what a server sent: an address of at most 64 bytes made of hex digits, dots and colons (the client
    /// parses it again before use), and a port that is not 0. `nil` when there is nothing usable.
    public init?(address: String?, port: Int?) {
        guard let address, !address.isEmpty, address.utf8.count <= 64,
            address.utf8.allSatisfy({ byte in
                (0x30...0x39).contains(byte) || (0x61...0x66).contains(byte) || (0x41...0x46).contains(byte)
                    || byte == 0x2E || byte == 0x3A
            })
        else { return nil }
        var checkedPort: UInt16?
        if let port {
            guard let value = UInt16(exactly: port), value != 0 else { return nil }
            checkedPort = value
        }
        self.init(address: address, port: checkedPort)
    }
}

/// A dotted-quad IPv4 address as text (`203.0.113.7`): four decimal parts of 0-255, no leading zeros, nothing else.
public enum IPv4Literal {
    /// The address's four bytes, or `nil` when `text` is not such an address.
    public static func parse(_ text: String) -> [UInt8]? {
        guard text.utf8.count <= 15 else { return nil }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard (1...3).contains(part.utf8.count), part.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
                part.utf8.count == 1 || part.utf8.first != 0x30, let value = UInt8(part)
            else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    public static func isValid(_ text: String) -> Bool { parse(text) != nil }

    /// Whether a spray punch may dial ports of `text` (docs/nat.md, "Spray punching"): an IPv4 literal that can be a
    /// NAT's public side, not "this network" (0/8), link-local (169.254/16), multicast, reserved or broadcast
    /// (224/3). Loopback (127/8) only when `loopbackServer`: the signaling server saw this client on loopback, so its
    /// peers are on this host; otherwise a server could point the dials at this host's own services.
    public static func isSprayTarget(_ text: String, loopbackServer: Bool) -> Bool {
        guard let bytes = parse(text) else { return false }
        switch bytes[0] {
        case 0, 224...255: return false
        case 127: return loopbackServer
        case 169 where bytes[1] == 254: return false
        default: return true
        }
    }
}
