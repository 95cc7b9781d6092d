public import ChunkStore

/// Super-seeding for the first seeder of a version: each chunk is sent once before any chunk is sent twice, because
/// the seeder's upload is the scarce resource at the start. No I/O.
///
/// Instead of its full bitfield, the seeder announces to each peer only the chunk offered to it; it offers the least
/// sent chunk the peer lacks, preferring chunks not currently offered to anyone else. Once every chunk has been sent
/// once, `isActive` turns false and the seeder announces everything like any other seeder.
public struct SuperSeeder<Peer: Hashable & Sendable>: Sendable {
    public let chunkCount: Int
    private var sentCount: [UInt32]
    private var unsent: Int
    private var offers: [Peer: Int] = [:]
    private var offeredCount: [Int: Int] = [:]
    private var cursor = 0

    public init(chunkCount: Int) {
        self.chunkCount = chunkCount
        sentCount = Array(repeating: 0, count: chunkCount)
        unsent = chunkCount
    }

    /// True while some chunk has never been sent.
    public var isActive: Bool { unsent > 0 }

    /// How many times chunk `index` was sent.
    public func timesSent(_ index: Int) -> Int { Int(sentCount[index]) }

    /// The chunk currently offered to `peer`, if any.
    public func offer(for peer: Peer) -> Int? { offers[peer] }

    /// Offers `peer` a chunk to announce to it: never-sent chunks not offered elsewhere first, then the least sent.
    public mutating func nextOffer(for peer: Peer, lacking has: ChunkSet) -> Int? {
        if let current = offers[peer], !has.contains(current) { return current }
        withdraw(peer)
        var best: Int?
        var bestKey = (UInt32.max, Int.max)
        for step in 0..<chunkCount {
            let index = (cursor + step) % chunkCount
            guard !has.contains(index) else { continue }
            let key = (sentCount[index], offeredCount[index] ?? 0)
            if key < bestKey {
                best = index
                bestKey = key
                if key == (0, 0) { break }
            }
        }
        guard let best else { return nil }
        cursor = (best + 1) % max(chunkCount, 1)
        offers[peer] = best
        offeredCount[best, default: 0] += 1
        return best
    }

    /// Whether a request from `peer` for `index` should be served: while active, only the chunk offered to it.
    public func mayServe(_ index: Int, to peer: Peer) -> Bool {
        !isActive || offers[peer] == index
    }

    /// Chunk `index` was sent to `peer`.
    public mutating func sent(_ index: Int, to peer: Peer) {
        if sentCount[index] == 0 { unsent -= 1 }
        sentCount[index] += 1
        if offers[peer] == index { withdraw(peer) }
    }

    /// A peer announced chunk `index` that this seeder never sent (it came from the server or another seeder): the
    /// chunk is in the swarm already, so it counts as sent once. Without this, a chunk peers took elsewhere would keep
    /// super-seeding on for good, and the seeder would serve one chunk at a time to the last peers.
    public mutating func seen(_ index: Int) {
        guard index >= 0, index < chunkCount, sentCount[index] == 0 else { return }
        unsent -= 1
        sentCount[index] = 1
    }

    /// The peer left: its offer is withdrawn.
    public mutating func withdraw(_ peer: Peer) {
        guard let index = offers.removeValue(forKey: peer) else { return }
        offeredCount[index, default: 1] -= 1
        if offeredCount[index] == 0 { offeredCount[index] = nil }
    }
}
