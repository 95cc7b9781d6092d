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
