internal import ChunkStore

/// Fetching: the manifest, the download's start, requests to peers and what arrives, storing, and overdue requests.
extension SwarmEngine {
    /// Serves the version: all of it, or only the chunks in `holding` (which must have a bit per chunk). A part is
    /// announced with a bitfield, never super-seeded: the super-seeder's rule "nothing leaves twice before everything
    /// left once" means nothing for chunks this side cannot send.
    mutating func seed(_ manifest: Manifest, holding: ChunkSet? = nil) {
        guard (try? manifest.verify(root: root)) != nil else {
            return log(.warning, "asked to seed a manifest of another root")
        }
        if let holding, holding.count != manifest.chunks.count {
            return log(.warning, "asked to seed a part whose chunk set does not fit the manifest")
        }
        guard !fetching else { return log(.warning, "asked to seed while fetching") }
        let sameVersion = self.manifest?.chunks.count == manifest.chunks.count
        self.manifest = manifest
        let wasComplete = have?.isFull ?? false
        // A part served before: peers that had its bitfield learn what was added with `have` messages.
        let before = seedingPart && sameVersion ? have : nil
        let part = holding.flatMap { $0.isFull ? nil : $0 }
        have = part ?? ChunkSet(count: manifest.chunks.count, full: true)
        seedingPart = part != nil
        if let before, let have {
            let added = have.filter { !before.contains($0) }.map { OutboundMessage.have(chunk: UInt32($0)) }
            for link in order where links[link]?.sentBitfield == true && !added.isEmpty { send(added, to: link) }
        }
        if part != nil || before != nil {
            superSeeder = nil
        } else if options.superSeed, !wasComplete, manifest.chunks.count > 0 {
            // Only the chunks the swarm lacks are super-seeded: what connected peers have counts as sent.
            var seeder = SuperSeeder<LinkID>(chunkCount: manifest.chunks.count)
            for link in order {
                for index in links[link]?.theirs ?? ChunkSet(count: 0) where index < manifest.chunks.count {
                    seeder.seen(index)
                }
            }
            superSeeder = seeder.isActive ? seeder : nil
        }
        for link in order {
            applyAnnouncements(link)
            announce(to: link)
        }
    }

    mutating func beginFetch(manifest known: Manifest?, useServer: Bool) {
        server.enabled = useServer && options.useServer
        if let known, manifest == nil {
            guard (try? known.verify(root: root)) != nil else { return fail(.noManifest) }
            install(known)
        }
        if manifest != nil {
            emit(.manifestReady)
        } else {
            manifestDeadline = now + options.manifestTimeout.secondsValue
            if !manifestAssembler.isActive, let first = order.first { requestManifest(from: first) }
        }
    }

    /// The download is open: start picking.
    mutating func opened(have opened: ChunkSet, localBytes: Int64) {
        guard let manifest, opened.count == manifest.chunks.count, failure == nil else { return }
        counters.bytesFromLocal += localBytes
        have = opened
        var picker = PiecePicker<LinkID>(chunkCount: manifest.chunks.count, have: opened)
        for link in order {
            guard let peer = links[link] else { continue }
            // A super-seeding peer has every chunk (its hello says so) before it has announced anything: without it
            // counted at once, every chunk looked unavailable and the server was asked for the first ones.
            if peer.superSeeding {
                picker.peerJoined(link, has: ChunkSet(count: manifest.chunks.count, full: true))
            } else if let theirs = peer.theirs {
                picker.peerJoined(link, has: theirs)
            }
        }
        self.picker = picker
        lastPeerDelivery = now
        lastProgress = now
        server.fetchStarted(at: now)
        fetching = true
        for link in order { announce(to: link) }
        log(
            .info, "fetch started",
            [
                "chunks": "\(manifest.chunks.count)", "chunks.have": "\(opened.cardinality)",
                "peers": "\(links.count)",
            ])
        if picker.isComplete { return complete() }
        for link in order {
            updateInterest(link)
            fill(link)
        }
    }

    mutating func fetchFinished() {
        picker = nil
        fetching = false
        becomeOrigin()
    }

    /// A fetch that finished holding chunks no connected peer holds (they came from the server, or from peers that
    /// have left) leaves this side the swarm's only source of them: an origin, like a seeder that indexed the file.
    /// It super-seeds them to the peers that connect from now on, so that its uplink sends each once before any twice.
    /// The peers connected now saw every chunk announced as it arrived: they are served as before
    /// (`SuperSeeder`'s exempt peers). Nothing changes while a super-seeding peer is connected (the swarm has its origin), or
    /// when the connected peers hold every chunk already.
    ///
    /// Without this, a fetcher that took the file from the server and stays to seed (`get --seed`, a lingering
    /// fetcher) announced its full bitfield to each newcomer, and every newcomer asked it for the same rarest chunks:
    /// in the NAT testbed's swarm of four (docs/benchmarks.md) it sent 1.33-1.39 F where an origin sent 1.09 F.
    mutating func becomeOrigin() {
        guard superSeeder == nil, !seedingPart, let manifest, have?.isFull == true, manifest.chunks.count > 0,
            !links.values.contains(where: \.superSeeding)
        else { return }
        var seeder = SuperSeeder<LinkID>(chunkCount: manifest.chunks.count, exempt: Set(order))
        for link in order {
            for index in links[link]?.theirs ?? ChunkSet(count: 0) where index < manifest.chunks.count {
                seeder.seen(index)
            }
        }
        guard seeder.isActive else { return }
        superSeeder = seeder
        log(.info, "fetch finished with chunks no connected peer holds: super-seeding them to newcomers")
    }

    mutating func complete() {
        fetching = false
        for chunk in server.cancelAll() { emit(.cancelRange(chunk: chunk)) }
        for link in order { setInterest(link, false) }
        guard !finishedReported else { return }
        finishedReported = true
        emit(.finished)
    }

    /// Keeps the peer's pipeline full: as many chunks in flight as its bandwidth-delay product needs.
    mutating func fill(_ link: LinkID) {
        guard fetching, storingBytes < Self.maxStoringBytes, picker != nil, var peer = links[link], !peer.peerChoking,
            peer.amInterested,
            let manifest, let theirs = peer.theirs
        else { return }
        // The picker is taken out while it changes and put back on the way out: changed as a copy while the engine
        // still held it, its tables were copied at every block that arrived. Nothing called below reads it.
        var picker = self.picker.take()!
        defer { self.picker = picker }
        if peer.inheritsRequests {
            // Requests inherited from a replaced connection of this peer (`handOver`) go out first: their missing
            // blocks only, or the chunk is wanted again if this connection's announcements lack it.
            peer.inheritsRequests = false
            var resent: [OutboundMessage] = []
            for chunk in peer.outstanding.keys.sorted() where !peer.outstanding[chunk]!.sent {
                if theirs.contains(chunk) {
                    peer.outstanding[chunk]!.sent = true
                    peer.outstanding[chunk]!.requestedAt = now
                    resent += peer.outstanding[chunk]!.pendingBlocks(of: chunk).map { .request($0) }
                } else {
                    peer.outstanding[chunk] = nil
                    picker.failed(chunk, from: .peer(link))
                    emit(.discard(chunk: chunk, from: .peer(link)))
                }
            }
            links[link] = peer
            send(resent, to: link)
        }
        var room = peer.pipeline.depth(chunkSize: manifest.averageChunkLength) - peer.outstanding.count
        // A relayed peer, while links around the relay serve this side: only what they cannot give, a few at a time.
        let lastResort = peer.relayed ? relayAllowedChunks(picker: picker) : nil
        if lastResort != nil { room = min(room, Self.relayedDepth - peer.outstanding.count) }
        guard room > 0 else { return }
        var restricted: ChunkSet? = peer.superSeeding ? theirs : nil
        if peer.superSeeding, links.values.contains(where: { !$0.superSeeding && $0.theirs != nil }) {
            // The origin (a super-seeder) is asked only for chunks no other connected peer has, so that its uplink,
            // the scarce one, sends each chunk about once; the others are traded between peers.
            // Idle: no peer delivered, nor was asked, for a while. A peer just asked for a chunk it announced gets
            // that while: when every fetcher waited for the last chunks and the peers that got them announced them,
            // each fetcher asked those peers and, idle for seconds already, the origin too (the late-seeder benchmark
            // sent two chunks five more times each so).
            let idle = now - max(lastPeerDelivery, lastPeerAsked) >= options.peerIdleBeforeServer
            if !theirs.isFull || idle {
                restricted = originOnlyChunks(among: theirs, picker: picker, strict: false)
            } else {
                restricted = originOnlyChunks(among: theirs, picker: picker, strict: true)
            }
            // Once it announces every chunk (super-seeding is over), it also fills in for peers that give this fetcher
            // nothing: without that, its uplink idled at the end while a fetcher that peers choke (a slow uplink
            // earns few unchokes), or a chunk that only a slow peer holds, held back the finish.
            if theirs.isFull, restricted?.isEmpty ?? true, idle {
                restricted = theirs
            }
        }
        if let lastResort {
            let base = restricted ?? theirs
            restricted = ChunkSet(count: base.count, indexes: base.lazy.filter { lastResort.contains($0) })
        }
        let picks = picker.next(
            for: link, limit: room, restrictedTo: restricted, late: picker.isEndgame ? lateChunks() : [], using: &rng)
        guard !picks.isEmpty else { return }
        var requests: [OutboundMessage] = []
        for chunk in picks {
            let length = manifest.chunks[chunk].length
            var offsets: Set<UInt32> = []
            var offset = 0
            while offset < length {
                let block = min(Int(WireLimits.maxBlockLength), length - offset)
                requests.append(
                    .request(BlockRequest(chunk: UInt32(chunk), offset: UInt32(offset), length: UInt32(block))))
                offsets.insert(UInt32(offset))
                offset += block
            }
            peer.outstanding[chunk] = Assembly(requestedAt: now, length: length, pending: offsets)
        }
        if !peer.superSeeding { lastPeerAsked = now }
        links[link] = peer
        send(requests, to: link)
    }

    /// In endgame, the chunks in flight that none of their sources is expected to deliver within `endgameLate` seconds
    /// (what is still to come of it and of the chunks asked of that source before it, at the source's rate): they may
    /// be asked of more sources than `PiecePicker.endgameRequesters`. With two slow peers asked, a fast fetcher's last
    /// chunk took 11-17 s in the uneven benchmark while faster peers and the origin had it.
    func lateChunks() -> Set<Int> {
        var soonest: [Int: Double] = [:]
        for link in order {
            guard let peer = links[link] else { continue }
            let rate = peer.pipeline.rate ?? 0
            var ahead = 0
            for (chunk, assembly) in peer.outstandingByAge {
                ahead += assembly.remainingBytes
                let eta = rate > 0 ? Double(ahead) / rate : .infinity
                soonest[chunk] = min(soonest[chunk] ?? .infinity, eta)
            }
        }
        return Set(soonest.filter { $0.value > Self.endgameLate }.keys)
    }

    /// How long a chunk's sources may take in endgame before more are asked for it.
    static let endgameLate = 2.0

    /// The chunks of `offered` that no other peer can give this fetcher: only super-seeding peers have them, or the
    /// other holders choke it or send to it at under a quarter of the fastest peer's rate (cached for 50 ms: this runs
    /// at every arrival). A peer that chokes a fetcher (a slow uplink earns few unchokes) or barely sends does not
    /// make a chunk available to it.
    mutating func originOnlyChunks(among offered: ChunkSet, picker: PiecePicker<LinkID>, strict: Bool) -> ChunkSet {
        if originOnlyCache == nil || originOnlyCache!.strict != strict || now - originOnlyCache!.at > 0.05 {
            let supers = links.values.filter(\.superSeeding).count
            let peers = order.compactMap { links[$0] }.filter { !$0.superSeeding && $0.theirs != nil }
            // Behind a relayed link a chunk is at hand only as a last resort: an origin reached around the relay is
            // asked for it first (while super-seeding it offers only chunks no one has, so this weighs only after).
            let relayedAreLastResort = links.values.contains { $0.superSeeding && !$0.relayed }
            let slow: [PeerState]
            if strict {
                // While peers feed this fetcher, a holder is passed over only if it serves this side far slower than
                // the fastest peer does (judged while it served, not while it choked this side).
                let fastest = peers.compactMap(\.servingRate).max() ?? 0
                slow = peers.filter {
                    (relayedAreLastResort && $0.relayed) || ($0.servingRate ?? .infinity) < fastest / 8
                }
            } else {
                let fastest = peers.map { $0.recvMeter.rate(at: now) }.max() ?? 0
                slow = peers.filter {
                    (relayedAreLastResort && $0.relayed) || $0.peerChoking || $0.recvMeter.rate(at: now) < fastest / 4
                }
            }
            var unusable = [Int32](repeating: 0, count: picker.chunkCount)
            for peer in slow {
                for index in peer.theirs! where index < picker.chunkCount { unusable[index] += 1 }
            }
            var only = ChunkSet(count: picker.chunkCount)
            for index in 0..<picker.chunkCount where picker.availability(of: index) - Int(unusable[index]) <= supers {
                _ = only.insert(index)
            }
            originOnlyCache = (now, strict, only)
        }
        let only = originOnlyCache!.chunks
        return ChunkSet(count: offered.count, indexes: offered.lazy.filter { only.contains($0) })
    }

    /// A piece arrived. It runs for every block, so the peer's state is changed in place: a copy of it held across
    /// the change would copy its tables per block.
    mutating func receivePiece(_ block: BlockRequest, from link: LinkID) {
        guard links[link] != nil else { return }
        let chunk = Int(block.chunk)
        let length = Int(block.length)
        links[link]!.recvMeter.add(length, at: now)
        downloadMeter.add(length, at: now)
        // Scalars only: a copy of the assembly kept alive would make the removal below copy its pending set.
        guard let expected = links[link]!.outstanding[chunk]?.expectedLength(of: block.offset),
            let chunkLength = links[link]!.outstanding[chunk]?.length,
            let requestedAt = links[link]!.outstanding[chunk]?.requestedAt
        else {
            counters.bytesWasted += Int64(length)
            return
        }
        guard length == expected else { return drop(link, reason: .malformedMessage, fault: true) }
        emit(.keepBlock(link, block, chunkLength: chunkLength))
        links[link]!.bytesReceived += Int64(length)
        links[link]!.servingTime += now - max(links[link]!.lastPieceAt, requestedAt)
        links[link]!.lastPieceAt = now
        links[link]!.outstanding[chunk]!.pending.remove(block.offset)
        links[link]!.outstanding[chunk]!.lastBlockAt = now
        lastPeerDelivery = now
        if !links[link]!.relayed { lastDirectDelivery = now }
        if links[link]!.outstanding[chunk]!.pending.isEmpty {
            links[link]!.outstanding[chunk] = nil
            links[link]!.pipeline.arrived(bytes: chunkLength, requestedAt: requestedAt, now: now)
            arrived(chunk, length: chunkLength, from: .peer(link))
        }
        fill(link)
    }

    /// A whole chunk arrived: have it verified and written, unless it is here or on its way to the disk already.
    mutating func arrived(_ chunk: Int, length: Int, from source: ChunkSource) {
        if have?.contains(chunk) ?? true || storing[chunk] != nil {
            counters.bytesWasted += Int64(length)
            emit(.discard(chunk: chunk, from: source))
            return
        }
        storing[chunk] = source
        storingBytes += manifest?.chunks[chunk].length ?? length
        emit(.store(chunk: chunk, from: source))
    }

    /// A chunk handed to the shell has been written or refused: its bytes leave the backlog, and when that frees
    /// room for requests, every peer's pipeline is filled again.
    private mutating func leftStoring(_ chunk: Int) {
        storing[chunk] = nil
        let wasFull = storingBytes >= Self.maxStoringBytes
        storingBytes -= manifest?.chunks[chunk].length ?? 0
        if wasFull, storingBytes < Self.maxStoringBytes {
            for link in order { fill(link) }
        }
    }

    mutating func stored(_ chunk: Int, from source: ChunkSource) {
        guard storing[chunk] == source else { return }
        leftStoring(chunk)
        guard var have, let manifest, !have.contains(chunk) else { return }
        have.insert(chunk)
        self.have = have
        lastProgress = now
        let bytes = Int64(manifest.chunks[chunk].length)
        let others = picker?.received(chunk, from: source) ?? []
        switch source {
        case .peer(let link):
            counters.bytesFromPeers += bytes
            counters.chunksFromPeers += 1
            if links[link]?.relayed ?? false { counters.bytesFromRelayedPeers += bytes }
            if let key = links[link]?.deviceKey { usedPeers.insert(key) }
        case .server:
            counters.bytesFromServer += bytes
            counters.chunksFromServer += 1
            server.succeeded()
        }
        for other in others { cancel(chunk, at: other) }
        if superSeeder == nil {
            // A super-seeding peer announced the chunk as an offer: it learns from this `have` that the chunk is in
            // the swarm (another origin may have offered the same chunk and waits for it to be taken).
            for link in order where links[link]!.superSeeding || !(links[link]!.theirs?.contains(chunk) ?? false) {
                send(.have(chunk: UInt32(chunk)), to: link)
            }
        }
        if picker?.isComplete ?? false { return complete() }
        if case .peer(let link) = source { fill(link) }
    }

    mutating func rejected(_ chunk: Int, from source: ChunkSource) {
        guard storing[chunk] == source else { return }
        leftStoring(chunk)
        counters.badChunks += 1
        counters.bytesWasted += Int64(manifest?.chunks[chunk].length ?? 0)
        picker?.failed(chunk, from: source)
        switch source {
        case .peer(let link):
            log(.warning, "peer sent a chunk that failed verification", ["peer": peerName(link), "chunk": "\(chunk)"])
            drop(link, reason: .badChunk, fault: true)
        case .server:
            fail(.serverMismatch(chunk: chunk))
        }
    }

    mutating func cancel(_ chunk: Int, at source: ChunkSource) {
        switch source {
        case .server:
            if server.cancel(chunk) { emit(.cancelRange(chunk: chunk)) }
        case .peer(let link):
            guard let assembly = links[link]?.outstanding.removeValue(forKey: chunk) else { return }
            emit(.discard(chunk: chunk, from: source))
            send(assembly.pendingBlocks(of: chunk).map { .cancel($0) }, to: link)
        }
    }

    /// Requests so late that they are given up and asked elsewhere (a slow or stalled peer must not hold back the
    /// finish).
    mutating func checkOverdue() {
        guard picker != nil else { return }
        for link in order {
            guard let peer = links[link] else { continue }
            var queued = 0
            var overdue: [Int] = []
            for (chunk, assembly) in peer.outstandingByAge {
                // What is still to come, counted from the last sign of progress: the request, or its last block.
                let remaining = assembly.remainingBytes
                if peer.pipeline.isOverdue(
                    bytes: remaining, queuedAhead: queued, requestedAt: assembly.lastBlockAt ?? assembly.requestedAt,
                    now: now)
                {
                    overdue.append(chunk)
                }
                queued += remaining
            }
            guard !overdue.isEmpty else { continue }
            var cancels: [OutboundMessage] = []
            for chunk in overdue {
                guard let assembly = links[link]?.outstanding.removeValue(forKey: chunk) else { continue }
                picker?.failed(chunk, from: .peer(link))
                emit(.discard(chunk: chunk, from: .peer(link)))
                cancels += assembly.pendingBlocks(of: chunk).map { .cancel($0) }
            }
            send(cancels, to: link)
            log(.debug, "requests overdue, asked elsewhere", ["peer": peerName(link), "chunks": "\(overdue.count)"])
        }
    }
}

extension Manifest {
    /// The mean chunk length (at least 1).
    var averageChunkLength: Int { chunks.isEmpty ? 1 : max(1, Int(size / Int64(chunks.count))) }
}
