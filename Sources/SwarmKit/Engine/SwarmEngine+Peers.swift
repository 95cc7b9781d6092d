internal import ChunkStore
internal import HarpBasics

/// One connected peer, as the engine sees it.
struct PeerState: Sendable {
    let link: LinkID
    let deviceKey: [UInt8]
    let initiatedByUs: Bool
    let connectedAt: Double
    /// The peer super-seeds: it has every chunk but announces them one at a time.
    let superSeeding: Bool
    /// The connection goes through the signaling server's relay (the last resort: `relayAllowedChunks`).
    let relayed: Bool
    var listenAddress: PeerAddress?
    var pipeline: RequestPipeline
    var theirs: ChunkSet?
    var rawBitfield: Bitfield?
    /// Haves that arrived with the manifest known, in arrival order: applied (and emptied) at once.
    var rawHaves: [UInt32] = []
    /// Haves that arrived before the manifest, within `chunkCountBound`.
    var earlyHaves: ChunkSet?
    var sentBitfield = false
    var amChoking = true
    var amInterested = false
    var peerChoking = true
    var peerInterested = false
    var outstanding: [Int: Assembly] = [:]
    /// Whether `outstanding` holds requests inherited from a replaced connection that are still to be sent.
    var inheritsRequests = false
    /// What the peer asked for that its upload loop has not taken yet.
    var uploads = UploadQueue()
    var recvMeter = RateMeter()
    /// Chunk bytes received from the peer, and the seconds it spent sending them: from each block's request, or the
    /// block before it, to its arrival. Their ratio is the rate at which the peer serves this side while it does: a
    /// peer that chokes this side for a while is not slow for it.
    var bytesReceived: Int64 = 0
    var servingTime: Double = 0
    var lastPieceAt: Double = 0

    /// Bytes per second this peer sent while serving this side; nil before a whole second of it.
    var servingRate: Double? { servingTime >= 1 ? Double(bytesReceived) / servingTime : nil }
    var sendMeter = RateMeter()

    init(_ info: ConnectedPeer, connectedAt: Double, pipeline: RequestPipeline) {
        link = info.link
        deviceKey = info.deviceKey
        initiatedByUs = info.initiatedByUs
        self.connectedAt = connectedAt
        superSeeding = info.superSeeding
        relayed = info.relayed
        listenAddress = info.listenAddress
        self.pipeline = pipeline
    }

    /// The chunks requested from this peer, oldest request first (ties by index).
    var outstandingByAge: [(chunk: Int, assembly: Assembly)] {
        outstanding.map { (chunk: $0.key, assembly: $0.value) }.sorted {
            ($0.assembly.requestedAt, $0.chunk) < ($1.assembly.requestedAt, $1.chunk)
        }
    }
}

/// A chunk being received from one peer, block by block (the shell holds the bytes).
struct Assembly: Sendable {
    var requestedAt: Double
    var length: Int
    var pending: Set<UInt32>
    /// When the last of its blocks arrived (nil: none yet). A chunk whose blocks keep coming is late only counted from
    /// there: counted from the request, a chunk that came slowly but steadily from a busy origin was given up with one
    /// block of twelve to go, its eleven blocks thrown away, and asked again from the same origin.
    var lastBlockAt: Double?
    /// False for an assembly handed over from a replaced link: its pending blocks are still to be asked on this one
    /// (`SwarmEngine.fill`, once the peer unchokes it).
    var sent = true

    /// The length of the block at `offset` (the last block of a chunk may be short).
    func blockLength(at offset: Int) -> Int { min(Int(WireLimits.maxBlockLength), length - offset) }

    /// The length of the block at `offset` if that block is still awaited, else nil.
    func expectedLength(of offset: UInt32) -> Int? { pending.contains(offset) ? blockLength(at: Int(offset)) : nil }

    /// The bytes of the blocks not yet received.
    var remainingBytes: Int { pending.reduce(0) { $0 + blockLength(at: Int($1)) } }

    /// The requests of the blocks not yet received, in order (to cancel them).
    func pendingBlocks(of chunk: Int) -> [BlockRequest] {
        pending.sorted().map {
            BlockRequest(chunk: UInt32(chunk), offset: $0, length: UInt32(blockLength(at: Int($0))))
        }
    }
}

/// Connections: admission and the tie-break between two dials, departures, faults and bans, announcements, interest
/// and peer exchange.
extension SwarmEngine {
    mutating func connect(_ info: ConnectedPeer) {
        let key = info.deviceKey
        if banned.contains(key) {
            counters.bannedRefused += 1
            return emit(.close(info.link, .badChunk))
        }
        if key == localKey { return emit(.close(info.link, .duplicateConnection)) }
        var inherited: [Int: Assembly] = [:]
        if let existing = byKey[key], let old = links[existing] {
            // A connection around the relay replaces a relayed one, and a relayed one never replaces one around the
            // relay, whoever dialled: both ends see both connections' kinds alike, so they make the same choice (a
            // peer that dials our port mapping while we reached it through the relay keeps the mapped connection).
            // The same side dialled again: the old connection is stale (the peer restarted or lost it), replace it.
            // Both sides dialled each other: keep the connection whose initiator has the smaller device key, the same
            // choice on both ends.
            if info.relayed, !old.relayed { return emit(.close(info.link, .duplicateConnection)) }
            if old.relayed == info.relayed, old.initiatedByUs != info.initiatedByUs {
                let newInitiator = info.initiatedByUs ? localKey : key
                let oldInitiator = old.initiatedByUs ? localKey : key
                guard newInitiator.lexicographicallyPrecedes(oldInitiator) else {
                    return emit(.close(info.link, .duplicateConnection))
                }
            }
            inherited = handOver(from: existing, to: info.link)
            drop(existing, reason: .duplicateConnection, fault: false)
        }
        links[info.link] = PeerState(
            info, connectedAt: now, pipeline: RequestPipeline(maxDepth: options.maxPipelineDepth))
        links[info.link]!.outstanding = inherited
        links[info.link]!.inheritsRequests = !inherited.isEmpty
        order.append(info.link)
        byKey[key] = info.link
        if info.superSeeding, let count = manifest?.chunks.count, picker?.chunks(of: info.link) == nil {
            picker?.peerJoined(info.link, has: ChunkSet(count: count, full: true))
        }
        adjustChokes()
        log(
            .debug, "peer connected",
            [
                "peer": peerName(info.link), "initiator": info.initiatedByUs ? "us" : "them",
                "peers": "\(links.count)",
            ])
        announce(to: info.link)
        if manifest == nil { requestManifest(from: info.link) }
        exchangePeers(newcomer: info.link)
    }

    /// The chunks requested on `old`, taken over by `new`, a connection of the same peer that replaces it (a relayed
    /// link upgraded to a punched one, docs/nat.md): the blocks already received stay (the shell moves them,
    /// `handOver`), the picker counts the chunks in flight from `new`, and the missing blocks are asked on `new` when
    /// it may be asked (`fill`). Nothing received is lost and no chunk is asked twice.
    mutating func handOver(from old: LinkID, to new: LinkID) -> [Int: Assembly] {
        guard var peer = links[old] else { return [:] }
        var inherited: [Int: Assembly] = [:]
        for (chunk, assembly) in peer.outstandingByAge {
            var moved = assembly
            moved.sent = false
            moved.requestedAt = now
            inherited[chunk] = moved
        }
        peer.outstanding.removeAll()
        links[old] = peer
        let chunks = inherited.keys.sorted()
        picker?.transfer(chunks, from: .peer(old), to: .peer(new))
        emit(.handOver(from: old, to: new, chunks: chunks))
        if !chunks.isEmpty {
            log(.debug, "requests handed over to the peer's new connection", ["chunks": "\(chunks.count)"])
        }
        return inherited
    }

    mutating func disconnect(_ link: LinkID) {
        guard forget(link) != nil else { return }
        log(.debug, "peer disconnected", ["peers": "\(links.count)"])
    }

    /// Removes a link and everything that counted on it (availability, requests, offers, the manifest source), then
    /// rechokes. Returns the removed peer.
    @discardableResult
    mutating func forget(_ link: LinkID) -> PeerState? {
        guard let peer = links.removeValue(forKey: link) else { return nil }
        order.removeAll { $0 == link }
        if byKey[peer.deviceKey] == link { byKey[peer.deviceKey] = nil }
        for (chunk, _) in peer.outstandingByAge { emit(.discard(chunk: chunk, from: .peer(link))) }
        picker?.peerLeft(link)
        if var seeder = superSeeder.take() {
            seeder.withdraw(link)
            // Chunks that left this origin once and that no connected peer holds any more are offered again.
            var lost = 0
            if seeder.isActive, let theirs = peer.theirs {
                let holders = order.compactMap { links[$0]?.theirs }
                for index in theirs where seeder.timesSent(index) == 1 {
                    guard !holders.contains(where: { $0.contains(index) }) else { continue }
                    seeder.lost(index)
                    lost += 1
                }
            }
            superSeeder = consume seeder
            if lost > 0 {
                log(.debug, "chunks lost with a departing peer, offered again", ["chunks": "\(lost)"])
                for other in order { offerNext(to: other) }
            }
        }
        if manifestAssembler.source == link {
            manifestAssembler.abandon()
            if manifest == nil, let other = order.first { requestManifest(from: other) }
        }
        adjustChokes()
        return peer
    }

    /// Closes a link after a fault; a peer with repeated faults is banned for the session.
    mutating func drop(_ link: LinkID, reason: GoodbyeReason, fault: Bool) {
        guard let peer = forget(link) else { return }
        counters.peersDropped += 1
        if fault {
            counters.peerFaults += 1
            faults[peer.deviceKey, default: 0] += 1
            if faults[peer.deviceKey]! >= options.faultsBeforeBan {
                banned.insert(peer.deviceKey)
                log(.warning, "peer banned for this session", ["peer": DeviceIdentity.fingerprint(of: peer.deviceKey)])
            }
        }
        emit(.close(link, reason))
    }

    /// Tells a peer what this side has: the bitfield, or while super-seeding only the chunks offered to it.
    mutating func announce(to link: LinkID) {
        guard let manifest, let have, let peer = links[link] else { return }
        if let seeder = superSeeder, !seeder.isExempt(link) { return offerNext(to: link) }
        // Before the download is open, `have` is not known yet (a resumed download, chunks from the local store):
        // an empty bitfield then would be the only one, and a super-seeding origin would keep offering chunks this
        // side has, which it never asks for (a resumed fetch stalled that way).
        guard !peer.sentBitfield, fetching || seedingPart || have.isFull else { return }
        links[link]?.sentBitfield = true
        guard manifest.chunks.count <= Int(WireLimits.maxBitfieldChunks) else { return }
        send(.bitfield(have.bitfield), to: link)
    }

    /// Chunks offered to each peer while super-seeding: four shared among the interested peers, at least one each;
    /// with many peers each gets one, so that every first copy completes as soon as possible and can be passed on. A
    /// peer alone with the origin (the only link) gets as many as its request pipeline holds: there is nobody to
    /// share first copies with, and it must not be held to one round trip per few chunks.
    ///
    /// The window counts chunks of the chunking's average size: a version of much smaller chunks (a folder's bundle,
    /// each small file one chunk) gets as many more, or a peer alone with the origin would fetch 64 KiB files four per
    /// round trip.
    var superSeedWindow: Int {
        // Four chunks in flight held a lone fetcher on loopback to one `have`-and-request round trip per four
        // chunks: it took 1.15-1.2x the time of a fetcher served by a seeder that no longer super-seeds.
        let chunks =
            links.count <= 1
            ? options.maxPipelineDepth : max(1, 4 / max(1, links.values.filter(\.peerInterested).count))
        guard let manifest else { return chunks }
        return chunks * max(1, chunking.avgSize / manifest.averageChunkLength)
    }

    /// How many first copies a peer may hold that no other peer has announced, and for how long they count.
    static let superSeedSpread = 2
    static let superSeedPatience = 5.0
    /// How long super-seeding waits for a first copy's arrival to be announced before it counts as arrived. Short: a
    /// peer with a slow uplink announces late (its `have` waits behind its uploads), and while super-seeding lasts
    /// the others can take that chunk only from it. Not shorter: in the uneven swarm benchmark 90 % of first copies
    /// were announced within 0.4-0.9 s of their last block's send, and a chunk counted as arrived before it had was
    /// asked of the origin by every fetcher.
    static let superSeedArrival = 1.0

    mutating func offerNext(to link: LinkID) {
        guard superSeeder != nil, let peer = links[link], let manifest else { return }
        let interested = links.values.filter(\.peerInterested).count
        let window = superSeedWindow
        let offers = superSeeder!.nextOffers(
            for: link, lacking: peer.theirs ?? ChunkSet(count: manifest.chunks.count), limit: window,
            spread: interested > 1 ? Self.superSeedSpread : nil, patience: Self.superSeedPatience, now: now)
        send(offers.map { .have(chunk: UInt32($0)) }, to: link)
    }

    /// Every first copy has arrived: super-seeding ends `superSeedSettle` later. The recipients announce the last first
    /// copies to the origin and to the other peers at once, but their announcements to the others come later (behind
    /// the data they upload): had the origin's full bitfield come first, every fetcher would have seen the last chunks
    /// held by the origin alone and asked it for them (in the 8-fetcher benchmark a fetcher heard the recipient's
    /// `have` 0.2 s after the origin's bitfield, and two chunks went out five and six more times).
    mutating func superSeedingSettles() {
        if superSeedEndsAt == nil { superSeedEndsAt = now + Self.superSeedSettle }
    }

    /// How long super-seeding lasts after the last first copy arrived.
    static let superSeedSettle = 0.5

    /// Every chunk is in the swarm: from now on this seeder announces and serves everything like any other.
    mutating func endSuperSeeding() {
        guard superSeeder != nil else { return }
        superSeedEndsAt = nil
        superSeeder = nil
        log(.info, "super-seeding done: every chunk is in the swarm")
        for other in order { announce(to: other) }
    }

    mutating func exchangePeers(newcomer link: LinkID) {
        let known = order.filter { $0 != link }.compactMap { links[$0]?.listenAddress }
        if !known.isEmpty {
            send(.peerExchange(Array(known.prefix(WireLimits.maxPeerExchangeAddresses))), to: link)
        }
        if let address = links[link]?.listenAddress {
            for other in order where other != link { send(.peerExchange([address]), to: other) }
        }
    }

    mutating func learn(_ addresses: [PeerAddress]) {
        for address in addresses where !ownAddresses.contains(address) && !announcedAddresses.contains(address) {
            guard announcedAddresses.count < 4096 else { break }
            announcedAddresses.insert(address)
            emit(.discovered(address))
        }
    }

    mutating func updateInterest(_ link: LinkID) {
        guard let peer = links[link] else { return }
        guard fetching, let have, let theirs = peer.theirs else { return setInterest(link, false) }
        // A super-seeding peer has every chunk, whatever it announced so far.
        if peer.superSeeding { return setInterest(link, !have.isFull) }
        var wants = false
        for index in theirs where !have.contains(index) {
            wants = true
            break
        }
        setInterest(link, wants)
    }

    mutating func setInterest(_ link: LinkID, _ interested: Bool) {
        guard let peer = links[link], peer.amInterested != interested else { return }
        links[link]?.amInterested = interested
        send(interested ? .interested : .notInterested, to: link)
    }
}
