internal import ChunkStore

/// Relayed links as the last resort (docs/engine.md, "Relayed links"). A connection through the signaling server's
/// relay loads the organisation's server and shares its uplink with every other relayed pair, so while some link
/// around the relay (direct, mapped or punched) serves this side, a relayed peer is asked only for chunks that no such
/// link can give, and only after they had a moment to arrive through one, and with a short pipeline. A fetcher whose
/// peers are all relayed (a pair with a symmetric NAT on each side) uses them as before.
extension SwarmEngine {
    /// Most chunks in flight from one relayed peer while a link around the relay serves this side.
    static let relayedDepth = 4
    /// How long a chunk that only relayed peers hold waits for a link around the relay to bring it, while those links
    /// deliver: this long plus a random part up to as long again, so that fetchers that see the same chunk on the
    /// same relayed peer do not all ask for it at once (the first to have it passes it on directly).
    static let relayPatience = 3.0

    /// The peers that serve this side around the relay: not relayed, announced what they have, not choking it.
    func directSources() -> [PeerState] {
        order.compactMap { links[$0] }.filter { !$0.relayed && !$0.peerChoking && $0.theirs != nil }
    }

    /// The chunks a relayed peer may be asked for now, or nil when relayed peers are not restricted (no link around
    /// the relay serves this side). Excluded: chunks a direct source has (a seeder that announces every chunk thus
    /// excludes everything), and while direct sources delivered within the last `peerIdleBeforeServer` seconds, the
    /// chunks that have waited less than their patience since no direct source was seen to have them. Cached for
    /// 50 ms (it runs at every arrival on a relayed link).
    mutating func relayAllowedChunks(picker: PiecePicker<LinkID>) -> ChunkSet? {
        if let cache = relayCache, now - cache.at <= 0.05, cache.chunks?.count ?? picker.chunkCount == picker.chunkCount
        {
            return cache.chunks
        }
        let direct = directSources()
        guard !direct.isEmpty else {
            relayCache = (now, nil)
            return nil
        }
        let count = picker.chunkCount
        if relayWaitUntil.count != count { relayWaitUntil = [Double](repeating: -1, count: count) }
        var held = ChunkSet(count: count)
        var holdsAll = false
        // An origin (a super-seeder) is no holder here: its uplink is as scarce as the relay's (every fetcher's first
        // copies leave through it), and the origin rule (`originOnlyChunks`) already decides what it is asked for.
        // Counted as holding everything once it announces every chunk, it left a fetcher whose one other direct peer
        // was busy only the origin for the rest: in the testbed the origin sent 1.55 F and the swarm took 1.74x the
        // bound with nothing relayed.
        for peer in direct where !peer.superSeeding {
            let theirs = peer.theirs!
            if theirs.count == count, theirs.isFull {
                holdsAll = true
                break
            }
            for index in theirs where index < count { _ = held.insert(index) }
        }
        var allowed = ChunkSet(count: count)
        if !holdsAll {
            let idle = now - lastDirectDelivery >= options.peerIdleBeforeServer
            for index in 0..<count where !picker.have.contains(index) {
                if held.contains(index) {
                    relayWaitUntil[index] = -1
                    continue
                }
                if relayWaitUntil[index] < 0 {
                    let jitter = Double(rng.next() >> 11) / Double(1 << 53)
                    relayWaitUntil[index] = now + Self.relayPatience * (1 + jitter)
                }
                if idle || now >= relayWaitUntil[index] { _ = allowed.insert(index) }
            }
        }
        relayCache = (now, allowed)
        return allowed
    }
}
