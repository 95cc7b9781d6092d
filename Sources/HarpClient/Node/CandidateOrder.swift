public import SignalingProtocol

/// The order in which a peer's announced candidates are dialled (docs/nat.md): a local candidate on one of our own
/// subnets first (the peer is on our LAN, or on the same host), then a mapped one (a port its router forwards), then
/// the reflexive one (its NAT's public address with its listening port: reachable when the NAT forwards it, or once
/// punched), then the other local ones (a peer with a public address announces it as local), then kinds this
/// version does not know. Duplicates (same host and port) are dialled once; unparsable entries are dropped; at most
/// `limit` are kept, since every entry is a dial attempt a hostile announcement could multiply.
public enum CandidateOrder {
    public static func order(_ announced: [String], limit: Int = 8, isOnLink: (String) -> Bool) -> [Candidate] {
        let parsed = announced.prefix(32).compactMap(Candidate.init(text:))
        func rank(_ candidate: Candidate) -> Int {
            switch candidate.kind {
            case .local: isOnLink(candidate.host) ? 0 : 3
            case .mapped: 1
            case .reflexive: 2
            default: 4
            }
        }
        var seen = Set<String>()
        var ordered: [Candidate] = []
        for candidate in parsed.enumerated().sorted(by: {
            (rank($0.element), $0.offset) < (rank($1.element), $1.offset)
        })
        where seen.insert(candidate.element.hostAndPort).inserted {
            ordered.append(candidate.element)
            if ordered.count == limit { break }
        }
        return ordered
    }
}

/// Which addresses sit behind a NAT (docs/nat.md): a port mapping is asked for only when this host's advertised
/// address is one of them, so a host with a public address, and a swarm on loopback (the tests'), send no SSDP.
public enum AddressScope {
    /// Private IPv4 (10/8, 172.16/12, 192.168/16), shared address space (100.64/10) and unique-local IPv6
    /// (fc00::/7). Loopback, link-local, public addresses and anything that is not an IP address are not.
    public static func isPrivate(_ host: String) -> Bool {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 4 {
            let octets = parts.compactMap { UInt8($0) }
            guard octets.count == 4 else { return false }
            switch (octets[0], octets[1]) {
            case (10, _): return true
            case (172, 16...31): return true
            case (192, 168): return true
            case (100, 64...127): return true
            default: return false
            }
        }
        let lower = host.lowercased()
        return host.contains(":") && (lower.hasPrefix("fc") || lower.hasPrefix("fd"))
    }
}
