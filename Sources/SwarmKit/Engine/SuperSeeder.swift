public import ChunkStore

/// Super-seeding for an origin (a seeder that has the version from outside the swarm): each chunk is sent once before
/// any chunk is sent twice, because the origin's upload is the scarce resource at the start. No I/O.
///
/// Instead of its full bitfield, the seeder announces to each peer only the chunks offered to it, at most `limit` at a
/// time (the caller's choice: more than one when few peers are interested, so that a peer alone with the origin is not
/// held to one chunk per round trip; one when many are, so that each first copy completes as soon as possible and can
/// be passed on). Only chunks that were never sent and are not offered to another peer are offered, so no chunk can leave
/// twice while another has not left at all. Once every chunk is in the swarm (sent once and announced by a peer, or
/// announced by a peer that took it elsewhere), `isActive` turns false and the seeder announces everything like any
/// other seeder. A first copy on its way does not count as in the swarm: had super-seeding ended when the last one left
/// the seeder, every fetcher would have seen the last few chunks held by the seeder alone and asked it for them at that
/// moment (in the uneven swarm benchmark, 10 of the 13 chunks the seeder sent twice).
public struct SuperSeeder<Peer: Hashable & Sendable>: Sendable {
    public let chunkCount: Int
    private var sent: [Bool]
    private var unsent: Int
    private var offers: [Peer: Set<Int>] = [:]
    /// Who each offered chunk is offered to (one peer: an unsent chunk is offered to one peer at a time).
    private var offeredTo: [Int: Peer] = [:]
    private var cursor = 0
    /// Chunks lost with a departing peer, offered before the cursor's next ones: offered when the cursor came round to
    /// them again, they were the last first copies, held by one peer each when super-seeding ended, and every fetcher
    /// asked the origin for them (in the uneven benchmark, two such chunks went out six times each).
    private var requeued: [Int] = []
    /// Whether each chunk is in `requeued`: a departure can lose every chunk a peer took, and searching the list for
    /// each one made that quadratic in the file's chunks.
    private var isRequeued: [Bool]
    /// The chunks each peer took from this seeder that no other peer has announced yet, with when they were sent.
    private var unspread: [Peer: [Int: Double]] = [:]
    /// Who took each chunk from this seeder first.
    private var recipient: [Int: Peer] = [:]
    /// First copies sent whose arrival no peer has announced yet, with when they were sent.
    private var arriving: [Int: Double] = [:]
    /// Peers that saw every chunk announced before super-seeding began (a fetch that finished as the only holder,
    /// `SwarmEngine.becomeOrigin`): they are neither offered chunks nor refused any.
    private var exempt: Set<Peer> = []
    /// The chunks sent to each peer that it has not announced yet. A peer may ask for such a chunk again (it gave up
    /// on a late copy, or a cancel crossed the last block): refused, it asked again every few seconds and never had
    /// it, nobody else could take it from that peer, and when super-seeding ended every fetcher asked the origin for
    /// it (in the uneven swarm benchmark one chunk went out seven times so). Once: a chunk sent again leaves the set,
    /// so a peer that keeps asking for the same chunk cannot take the origin's uplink from the first copies.
    private var delivered: [Peer: Set<Int>] = [:]

    public init(chunkCount: Int, exempt: Set<Peer> = []) {
        self.chunkCount = chunkCount
        sent = Array(repeating: false, count: chunkCount)
        isRequeued = Array(repeating: false, count: chunkCount)
        unsent = chunkCount
        self.exempt = exempt
    }

    /// Whether `peer` is served as by any seeder (it saw every chunk announced before super-seeding began).
    public func isExempt(_ peer: Peer) -> Bool { exempt.contains(peer) }

    /// True while some chunk has never been sent, or a first copy has not arrived (no peer announced it yet).
    public var isActive: Bool { unsent > 0 || !arriving.isEmpty }

    /// First copies sent at least `patience` seconds before `now` count as arrived even though no peer announced them
    /// (a peer that does not announce what it took must not keep super-seeding on, and the chunk from the others).
    public mutating func expireArrivals(now: Double, patience: Double) {
        arriving = arriving.filter { now - $0.value < patience }
    }

    /// When the oldest first copy whose arrival no peer announced was sent (nil: none waits).
    public var oldestArriving: Double? { arriving.values.min() }

    /// How many times chunk `index` was sent while super-seeding (0 or 1).
    public func timesSent(_ index: Int) -> Int { sent[index] ? 1 : 0 }

    /// The chunks currently offered to `peer`.
    public func offers(for peer: Peer) -> Set<Int> { offers[peer] ?? [] }

    /// Tops up the chunks offered to `peer` (dropping those it has meanwhile) to `limit`, with chunks never sent and
    /// not offered to anyone else. Returns the new offers, to announce to it.
    ///
    /// With `spread` set, a peer that still holds that many chunks from this seeder which no other peer has announced
    /// (younger than `patience` seconds at `now`) is offered nothing new: as in BitTorrent's super-seeding, a peer
    /// gets its next first copy once it has passed on the last, so a peer that passes chunks on slowly (a slow uplink,
    /// or one that nobody asks) takes fewer first copies, and fewer chunks wait at the end on it alone.
    public mutating func nextOffers(
        for peer: Peer, lacking has: ChunkSet, limit: Int = 1, spread: Int? = nil, patience: Double = 0, now: Double = 0
    ) -> [Int] {
        guard !exempt.contains(peer) else { return [] }
        var current = offers[peer] ?? []
        for index in current where has.contains(index) {
            current.remove(index)
            offeredTo[index] = nil
        }
        var added: [Int] = []
        if let spread, let held = unspread[peer] {
            // Copies past their patience no longer count: dropped here, so the table holds only the waiting ones.
            let waiting = held.filter { now - $0.value < patience }
            if waiting.count < held.count {
                for index in held.keys where waiting[index] == nil { recipient[index] = nil }
                unspread[peer] = waiting
            }
            guard waiting.count < spread else {
                offers[peer] = current
                return added
            }
        }
        // Lost chunks first, oldest loss first.
        var kept: [Int] = []
        for index in requeued {
            guard !sent[index], offeredTo[index] == nil else {
                isRequeued[index] = false
                continue
            }
            if current.count < limit, !has.contains(index) {
                isRequeued[index] = false
                current.insert(index)
                offeredTo[index] = peer
                added.append(index)
            } else {
                kept.append(index)
            }
        }
        requeued = kept
        // Nothing is ever sent twice while super-seeding, so an unsent chunk is one that no peer has.
        var scanned = 0
        while current.count < limit, unsent - offeredTo.count > 0, scanned < chunkCount {
            let index = cursor
            cursor = (cursor + 1) % max(chunkCount, 1)
            scanned += 1
            guard !sent[index], offeredTo[index] == nil, !has.contains(index) else { continue }
            current.insert(index)
            offeredTo[index] = peer
            added.append(index)
        }
        offers[peer] = current
        return added
    }

    /// Whether a request from `peer` for `index` should be served: while active, only chunks offered to it.
    public func mayServe(_ index: Int, to peer: Peer) -> Bool {
        !isActive || exempt.contains(peer) || offers[peer]?.contains(index) == true
            || delivered[peer]?.contains(index) == true
    }

    /// Chunk `index` was sent to `peer`.
    public mutating func sent(_ index: Int, to peer: Peer, at now: Double = 0) {
        if !sent[index], index >= 0, index < chunkCount {
            recipient[index] = peer
            unspread[peer, default: [:]][index] = now
            arriving[index] = now
        }
        markSent(index)
        if offers[peer]?.remove(index) != nil {
            delivered[peer, default: []].insert(index)
        } else {
            delivered[peer]?.remove(index)
        }
    }

    /// `announcer` announced chunk `index`: if another peer took it from this seeder, it has now spread. Returns that
    /// peer, which may be offered more.
    public mutating func announced(_ index: Int, by announcer: Peer) -> Peer? {
        arriving[index] = nil
        delivered[announcer]?.remove(index)
        guard let first = recipient[index], first != announcer else { return nil }
        recipient[index] = nil
        return unspread[first]?.removeValue(forKey: index) != nil ? first : nil
    }

    /// Chunk `index`, sent to `peer`, arrived there (it announced it). Until this was heard, super-seeding ended 0.5 s
    /// after the last first copies left (the recipient's own announcement was not counted, only other peers'), while
    /// a tenth of them took longer to arrive: every fetcher then saw those chunks held by the origin alone and asked it
    /// for them (in the uneven swarm benchmark one went out six times).
    public mutating func arrived(_ index: Int, at peer: Peer) {
        arriving[index] = nil
        delivered[peer]?.remove(index)
    }

    /// A peer announced chunk `index` that this seeder never sent (it came from the server or another seeder): the
    /// chunk is in the swarm already, so it counts as sent. Without this, a chunk peers took elsewhere would keep
    /// super-seeding on for good, and the seeder would serve only offered chunks to the last peers.
    public mutating func seen(_ index: Int) {
        guard index >= 0, index < chunkCount else { return }
        arriving[index] = nil
        markSent(index)
    }

    /// Chunk `index` counted as sent, but the only peers known to have it left before passing it on: it is unsent
    /// again, to be offered once more. Without this, the chunks a departing peer alone held would never be offered
    /// again while super-seeding lasts, and the peers still fetching would wait for them or take them from the server.
    public mutating func lost(_ index: Int) {
        guard index >= 0, index < chunkCount, sent[index] else { return }
        arriving[index] = nil
        sent[index] = false
        if !isRequeued[index] {
            isRequeued[index] = true
            requeued.append(index)
        }
        unsent += 1
    }

    /// The peer left: its offers are withdrawn.
    public mutating func withdraw(_ peer: Peer) {
        exempt.remove(peer)
        delivered[peer] = nil
        // Chunks offered to it and never sent are offered next, like lost ones: left for the cursor to come round to,
        // they were the last first copies (in the uneven benchmark, a chunk offered to the fetcher killed halfway
        // waited 26 s and then went out six times).
        for index in (offers.removeValue(forKey: peer) ?? []).sorted() {
            offeredTo[index] = nil
            if !sent[index], !isRequeued[index] {
                isRequeued[index] = true
                requeued.append(index)
            }
        }
        for index in (unspread.removeValue(forKey: peer) ?? [:]).keys { recipient[index] = nil }
    }

    private mutating func markSent(_ index: Int) {
        guard !sent[index] else { return }
        sent[index] = true
        unsent -= 1
        // It stays in its holder's offers (a request may be on its way), but no longer counts as an unsent offer.
        offeredTo[index] = nil
    }
}
