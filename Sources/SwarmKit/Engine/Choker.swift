/// Chooses which interested peers may download from us: a fixed number of upload slots go to the peers that help the
/// swarm most, plus one rotating optimistic unchoke that gives newcomers a chance. No I/O.
///
/// While we are still downloading, "help" is the rate at which a peer sends to us (tit for tat). Once we seed, it is
/// the rate at which a peer takes from us, so the upload goes to whoever can use it fastest and pass it on.
public struct Choker<Peer: Hashable & Sendable>: Sendable {
    /// What the choker knows of one connected peer.
    public struct PeerState: Sendable {
        public var peer: Peer
        public var interested: Bool
        /// Bytes per second this peer sent us recently.
        public var downloadRate: Double
        /// Bytes per second we sent this peer recently.
        public var uploadRate: Double
        /// When the peer connected (seconds, same clock as `now`).
        public var connectedAt: Double

        public init(peer: Peer, interested: Bool, downloadRate: Double, uploadRate: Double, connectedAt: Double) {
            self.peer = peer
            self.interested = interested
            self.downloadRate = downloadRate
            self.uploadRate = uploadRate
            self.connectedAt = connectedAt
        }
    }

    /// Regular upload slots, not counting the optimistic one.
    public var slots: Int
    /// Seconds between optimistic rotations.
    public var optimisticPeriod: Double
    /// Peers connected for less than this are three times as likely to be picked optimistically.
    public var newcomerAge: Double
    public private(set) var optimistic: Peer?
    private var optimisticSince: Double = -.infinity

    public init(slots: Int = 4, optimisticPeriod: Double = 30, newcomerAge: Double = 60) {
        self.slots = slots
        self.optimisticPeriod = optimisticPeriod
        self.newcomerAge = newcomerAge
    }

    /// The peers to unchoke now (every other peer is choked). Call it every ten seconds or so, and when a peer
    /// connects, leaves or changes interest.
    public mutating func unchoked(
        peers: [PeerState],
        seeding: Bool,
        now: Double,
        using rng: inout some RandomNumberGenerator
    ) -> Set<Peer> {
        let interested = peers.filter(\.interested)
        let ranked = interested.sorted { a, b in
            let (x, y) = seeding ? (a.uploadRate, b.uploadRate) : (a.downloadRate, b.downloadRate)
            return x != y ? x > y : a.connectedAt < b.connectedAt
        }
        var result = Set(ranked.prefix(slots).map(\.peer))
        let stillThere = optimistic.map { current in interested.contains { $0.peer == current } } ?? false
        if !stillThere || now - optimisticSince >= optimisticPeriod || result.contains(optimistic!) {
            let candidates = interested.filter { !result.contains($0.peer) }
            var weighted: [Peer] = []
            for candidate in candidates {
                let weight = now - candidate.connectedAt < newcomerAge ? 3 : 1
                weighted += Array(repeating: candidate.peer, count: weight)
            }
            optimistic = weighted.randomElement(using: &rng)
            optimisticSince = now
        }
        if let optimistic { result.insert(optimistic) }
        return result
    }
}
