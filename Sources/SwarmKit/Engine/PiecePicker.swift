public import ChunkStore

/// Decides which chunk to ask which source for: rarest first with random tie-breaks, a few random chunks first,
/// endgame with duplicate requests and cancels at the end. No I/O: events in, decisions out.
///
/// Sources are the connected peers and, as a last resort, the Nextcloud server (`Source.server`), which has every chunk
/// but does not count towards a chunk's availability: the server is asked for chunks that no connected peer has
/// (`nextForServer`), so with peers present it sends about one copy.
///
/// A chunk is *wanted* while it is missing and not in flight; wanted chunks sit in buckets by availability (how many
/// connected peers have it), so the rarest wanted chunk a peer has is found without scanning the whole file.
public struct PiecePicker<Peer: Hashable & Sendable>: Sendable {
    /// Where a request goes.
    public enum Source: Hashable, Sendable {
        case peer(Peer)
        case server
    }

    /// The number of chunks in the version.
    public let chunkCount: Int
    /// Until this many chunks are complete, a peer is given a random chunk it has rather than the rarest one, so that
    /// a newcomer quickly has something to trade.
    public var randomFirstCount: Int
    /// Chunks verified and written.
    public private(set) var have: ChunkSet

    var peers: [Peer: ChunkSet] = [:]
    var availabilityCounts: [Int32]
    /// buckets[a] holds the wanted chunks with availability a; position[i] is chunk i's place in its bucket or -1.
    var buckets: [[Int]] = [[]]
    var position: [Int32]
    /// Sources a chunk is requested from, in the order they were asked (more than one only in endgame). Arrays, not
    /// sets, wherever the order reaches a decision: the engine must decide the same way in every process (replay),
    /// and a set's order changes with the process's hash seed.
    var inFlight: [Int: [Source]] = [:]
    var requested: [Source: Set<Int>] = [:]

    public init(chunkCount: Int, have: ChunkSet? = nil, randomFirstCount: Int = 4) {
        self.chunkCount = chunkCount
        self.randomFirstCount = randomFirstCount
        self.have = have ?? ChunkSet(count: chunkCount)
        availabilityCounts = Array(repeating: 0, count: chunkCount)
        position = Array(repeating: -1, count: chunkCount)
        for index in 0..<chunkCount where !self.have.contains(index) { addWanted(index) }
    }

    /// The most sources a chunk is asked of at once in endgame, unless it is late: the first and one more. With no
    /// bound every free pipeline slot took a duplicate, and in the 8-fetcher benchmark the last chunks were asked of up
    /// to seven peers (the origin among them) at once; every copy but one was cut off by a cancel after its blocks in
    /// flight had come, 5 MiB wasted per fetcher. A late chunk (its sources are all slow) may be asked of more.
    static var endgameRequesters: Int { 2 }

    /// True when every missing chunk is already in flight: further picks duplicate requests (endgame).
    public var isEndgame: Bool { wantedCount == 0 && !isComplete }
    /// True when every chunk is verified and written.
    public var isComplete: Bool { have.isFull }
    /// Chunks still missing (wanted or in flight).
    public var missingCount: Int { chunkCount - have.cardinality }
    /// How many connected peers have `chunk`.
    public func availability(of chunk: Int) -> Int { Int(availabilityCounts[chunk]) }
    /// The chunks requested from `source` and not yet received.
    public func outstanding(for source: Source) -> Set<Int> { requested[source] ?? [] }

    private var wantedCount: Int { buckets.reduce(0) { $0 + $1.count } }

    // MARK: Peers

    /// A peer connected (or sent its bitfield).
    public mutating func peerJoined(_ peer: Peer, has chunks: ChunkSet) {
        precondition(chunks.count == chunkCount, "bitfield of another version")
        if peers[peer] != nil { peerLeft(peer) }
        peers[peer] = chunks
        for index in chunks { changeAvailability(index, by: 1) }
    }

    /// A peer announced a new chunk (`have`).
    public mutating func peer(_ peer: Peer, has chunk: Int) {
        guard chunk >= 0, chunk < chunkCount, peers[peer] != nil else { return }
        if peers[peer]!.insert(chunk) { changeAvailability(chunk, by: 1) }
    }

    /// A peer left or was dropped: its chunks no longer count, and what it was asked for is wanted again.
    public mutating func peerLeft(_ peer: Peer) {
        guard let chunks = peers.removeValue(forKey: peer) else { return }
        for index in chunks { changeAvailability(index, by: -1) }
        abandonAll(from: .peer(peer))
    }

    /// The chunks `peer` has, if it is known.
    public func chunks(of peer: Peer) -> ChunkSet? { peers[peer] }

    // MARK: Picking

    /// Up to `limit` chunks to request from `peer` now, marked in flight. Empty if the peer has nothing useful.
    public mutating func next(for peer: Peer, limit: Int, using rng: inout some RandomNumberGenerator) -> [Int] {
        next(for: peer, limit: limit, restrictedTo: nil, using: &rng)
    }

    /// Like `next(for:limit:using:)`, but only among `offered` (the chunks a super-seeding peer announced, while the
    /// picker counts it as having every chunk). In endgame, a chunk in `late` (none of its sources is expected to
    /// deliver it soon) may be asked of more than `endgameRequesters` sources.
    public mutating func next(
        for peer: Peer, limit: Int, restrictedTo offered: ChunkSet?, late: Set<Int> = [],
        using rng: inout some RandomNumberGenerator
    ) -> [Int] {
        guard var theirs = peers[peer], limit > 0 else { return [] }
        if let offered { theirs = offered }
        var picks: [Int] = []
        while picks.count < limit {
            let pick: Int?
            if have.cardinality < randomFirstCount {
                pick = randomWanted(in: theirs, using: &rng) ?? rarestWanted(in: theirs, using: &rng)
            } else {
                pick = rarestWanted(in: theirs, using: &rng)
            }
            if let pick {
                markInFlight(pick, from: .peer(peer))
                picks.append(pick)
                continue
            }
            // Endgame: duplicate an in-flight chunk this peer has and was not asked for, fewest requesters first.
            guard isEndgame, let duplicate = endgamePick(for: .peer(peer), in: theirs, late: late, using: &rng)
            else { break }
            markInFlight(duplicate, from: .peer(peer))
            picks.append(duplicate)
        }
        return picks
    }

    /// Up to `limit` chunks for the server: those no connected peer has, chosen at random so that fetchers starting
    /// together ask the server for different chunks and then trade them. With `includeAvailable` (peers cannot fill
    /// the link, or the endgame stalls), also the rarest others.
    ///
    /// `stripe` (this fetcher's position among the swarm's members, sorted by device key, and their number) makes
    /// fetchers prefer different unavailable chunks: chunk i belongs to stripe i mod n. Other fetchers cannot see which chunks this one asked the server for, so when only a few unavailable chunks are
    /// left they are likely already on their way to someone who will share them. `reserve` leaves that many to the
    /// others: pass about (fetchers × server requests each) while peers still keep this fetcher busy, and 0 when it is
    /// idle, so that nothing ever waits forever.
    public mutating func nextForServer(
        limit: Int,
        stripe: (index: Int, of: Int)? = nil,
        reserve: Int = 0,
        includeAvailable: Bool = false,
        using rng: inout some RandomNumberGenerator
    ) -> [Int] {
        var picks: [Int] = []
        while picks.count < limit, let index = preferredUnavailable(stripe) {
            markInFlight(index, from: .server)
            picks.append(index)
        }
        while picks.count < limit, buckets[0].count > reserve, let index = buckets[0].randomElement(using: &rng) {
            markInFlight(index, from: .server)
            picks.append(index)
        }
        guard includeAvailable else { return picks }
        let everything = ChunkSet(count: chunkCount, full: true)
        while picks.count < limit {
            if let pick = rarestWanted(in: everything, using: &rng) {
                markInFlight(pick, from: .server)
                picks.append(pick)
            } else if isEndgame, let duplicate = endgamePick(for: .server, in: everything, using: &rng) {
                markInFlight(duplicate, from: .server)
                picks.append(duplicate)
            } else {
                break
            }
        }
        return picks
    }

    // MARK: Results

    /// A chunk arrived from `source` and verified. Returns the other sources still asked for it: cancel those.
    public mutating func received(_ chunk: Int, from source: Source) -> [Source] {
        guard chunk >= 0, chunk < chunkCount, !have.contains(chunk) else {
            requested[source]?.remove(chunk)
            return []
        }
        have.insert(chunk)
        removeWanted(chunk)
        let askers = inFlight.removeValue(forKey: chunk) ?? []
        for asker in askers { requested[asker]?.remove(chunk) }
        return askers.filter { $0 != source }
    }

    /// A request failed (bad bytes, cancel, timeout, choke): the chunk is wanted again unless others still fetch it.
    public mutating func failed(_ chunk: Int, from source: Source) {
        requested[source]?.remove(chunk)
        guard var askers = inFlight[chunk] else { return }
        askers.removeAll { $0 == source }
        if askers.isEmpty {
            inFlight[chunk] = nil
            if !have.contains(chunk) { addWanted(chunk) }
        } else {
            inFlight[chunk] = askers
        }
    }

    /// The requests of `chunks` move from `old` to `new` (a peer's connection replaced by a new one): they stay in
    /// flight, now from `new`. A chunk not requested from `old` is left as it is.
    public mutating func transfer(_ chunks: [Int], from old: Source, to new: Source) {
        for chunk in chunks where requested[old]?.remove(chunk) != nil {
            requested[new, default: []].insert(chunk)
            guard var askers = inFlight[chunk], let index = askers.firstIndex(of: old) else { continue }
            if askers.contains(new) {
                askers.remove(at: index)
            } else {
                askers[index] = new
            }
            inFlight[chunk] = askers
        }
    }

    /// Every outstanding request to `source` is given up (it was choked, dropped or banned).
    public mutating func abandonAll(from source: Source) {
        for chunk in (requested.removeValue(forKey: source) ?? []).sorted() { failed(chunk, from: source) }
    }
}

/// Sources are recorded with the engine's events (`EngineRecording`).
extension PiecePicker.Source: Codable where Peer: Codable {}
