/// Paces uploads to a limit in bytes per second: the delay before each piece. No I/O.
public struct UploadPacer: Sendable {
    public let limit: Int?
    private var nextAt: Double = 0

    public init(limit: Int?) { self.limit = limit }

    /// The seconds to wait at `now` before sending `bytes`.
    public mutating func delay(bytes: Int, now: Double) -> Double {
        guard let limit, limit > 0 else { return 0 }
        let start = max(now, nextAt)
        nextAt = start + Double(bytes) / Double(limit)
        return start - now
    }
}

/// Serving peers: what the upload loop may send, super-seeding offers, and choking.
extension SwarmEngine {
    /// The upload loop takes an item: serve it, or nothing when it is not to be sent (cancelled, choked, a chunk
    /// this side does not have or may not serve now).
    mutating func uploadTaken(_ item: UploadItem, by link: LinkID) {
        guard links[link] != nil else { return }
        switch item {
        case .manifestPage(let page):
            links[link]?.uploads.popPage()
            guard manifest != nil else { return }
            emit(.servePage(link, page: page))
        case .block(let block):
            guard let wanted = links[link]?.uploads.pop(block), wanted, let peer = links[link], !peer.amChoking
            else { return }
            let chunk = Int(block.chunk)
            guard let manifest, let have, have.contains(chunk) else { return }
            if let seeder = superSeeder, !seeder.mayServe(chunk, to: link) { return }
            guard Int(block.offset) + Int(block.length) <= manifest.chunks[chunk].length else {
                log(.warning, "peer asked for a block outside its chunk", ["peer": peerName(link)])
                return drop(link, reason: .malformedMessage, fault: true)
            }
            emit(.serveBlock(link, block, delay: pacer.delay(bytes: Int(block.length), now: now)))
        }
    }

    mutating func blockSent(_ block: BlockRequest, to link: LinkID) {
        let bytes = Int(block.length)
        uploadMeter.add(bytes, at: now)
        counters.bytesUploaded += Int64(bytes)
        guard links[link] != nil else { return }
        if links[link]!.relayed { counters.bytesUploadedRelayed += Int64(bytes) }
        links[link]?.sendMeter.add(bytes, at: now)
        guard superSeeder != nil, let manifest else { return }
        let chunk = Int(block.chunk)
        guard Int(block.offset) + bytes == manifest.chunks[chunk].length else { return }
        // The super-seeder is changed in place, here and wherever it changes per chunk: a copy of it changed while
        // the engine still held it copied its tables (several with an entry per chunk) at every chunk sent.
        superSeeder!.sent(chunk, to: link, at: now)
        if links[link]?.theirs != nil { links[link]?.theirs?.insert(chunk) }
        guard superSeeder!.isActive else { return superSeedingSettles() }
        offerNext(to: link)
        // Peers that found nothing to be offered earlier (every unsent chunk was offered elsewhere) get offers.
        let window = superSeedWindow
        for other in order where other != link && (superSeeder?.offers(for: other).count ?? window) < window {
            offerNext(to: other)
        }
    }

    /// Between the regular rechokes: unchokes interested peers into free upload slots, without reranking anyone.
    /// Reranking at every interest change made slots flap with the rate estimates, and every choke throws away the
    /// requests the peer has outstanding here.
    mutating func adjustChokes() {
        let capacity = superSeeder != nil ? Int.max : fetching ? choker.slots + 1 : Self.seedingSlots
        var used = links.values.filter { !$0.amChoking && $0.peerInterested }.count
        let waiting = order.filter { links[$0]!.amChoking && links[$0]!.peerInterested }
        for link in waiting where used < capacity {
            used += 1
            links[link]?.amChoking = false
            send(.unchoke, to: link)
        }
    }

    mutating func rechoke() {
        lastChoke = now
        chokeDirty = false
        let states = order.compactMap { link in
            links[link].map {
                Choker<LinkID>.PeerState(
                    peer: link, interested: $0.peerInterested, downloadRate: $0.recvMeter.rate(at: now),
                    uploadRate: $0.sendMeter.rate(at: now), connectedAt: $0.connectedAt)
            }
        }
        // A super-seeder serves each peer only the one chunk it offered it, so its uplink is shared among all of them
        // anyway: choking some would only slow how fast distinct chunks enter the swarm. A seeder has no trade to
        // enforce: it unchokes up to `seedingSlots` interested peers, those it sends most to first. With the four
        // slots of tit for tat, the peers it had sent least to (the slow ones) stayed choked while the others, which
        // asked it for little, held the slots: its uplink idled while slow fetchers waited.
        let unchoked: Set<LinkID>
        if superSeeder != nil {
            unchoked = Set(states.filter(\.interested).map(\.peer))
        } else if !fetching {
            let ranked = states.filter(\.interested).sorted {
                ($0.uploadRate, $1.connectedAt) > ($1.uploadRate, $0.connectedAt)
            }
            unchoked = Set(ranked.prefix(Self.seedingSlots).map(\.peer))
        } else {
            unchoked = choker.unchoked(peers: states, seeding: false, now: now, using: &rng)
        }
        for link in order {
            let choke = !unchoked.contains(link)
            guard choke != links[link]?.amChoking else { continue }
            links[link]?.amChoking = choke
            send(choke ? .choke : .unchoke, to: link)
        }
    }

    /// Interested peers a seeder (not fetching, not super-seeding) unchokes at once.
    static let seedingSlots = 16

    // MARK: Time

    /// Time-driven work: overdue requests, interest, the manifest's wait, stalls and the regular rechoke.
    mutating func tick() {
        if chokeDirty || now - lastChoke >= 10 { rechoke() }
        if superSeeder != nil {
            superSeeder!.expireArrivals(now: now, patience: Self.superSeedArrival)
            if !superSeeder!.isActive {
                superSeedingSettles()
                if let endsAt = superSeedEndsAt, now >= endsAt { endSuperSeeding() }
            } else {
                // A chunk lost since is offered again: super-seeding goes on.
                superSeedEndsAt = nil
            }
        }
        if superSeeder != nil {
            // Offers held back while a peer's first copies had not spread, once they are too old to wait for.
            let window = superSeedWindow
            for link in order
            where links[link]!.peerInterested && (superSeeder?.offers(for: link).count ?? window) < window {
                offerNext(to: link)
            }
        }
        if manifest == nil, failure == nil { return tickManifest() }
        guard fetching, failure == nil else { return }
        checkOverdue()
        for link in order {
            updateInterest(link)
            fill(link)
        }
        if !server.enabled, links.isEmpty, now - lastProgress > options.stallTimeout { fail(.noSources) }
    }

    /// Asks the shell for a tick at the earliest time something is due.
    mutating func scheduleWake() {
        var due = lastChoke + 10
        // Offers held back while first copies spread are made again within a second of their patience running out.
        if let seeder = superSeeder {
            due = min(due, now + 1)
            // The end of super-seeding when the last first copies count as arrived without an announcement.
            if let oldest = seeder.oldestArriving { due = min(due, oldest + Self.superSeedArrival + 0.001) }
            if let endsAt = superSeedEndsAt { due = min(due, endsAt + 0.001) }
        }
        if manifest == nil, failure == nil, let deadline = manifestDeadline {
            due = min(due, deadline + 0.001)
            if manifestAssembler.isActive { due = min(due, manifestAssembler.startedAt + 5.001) }
        }
        if fetching, failure == nil {
            if let serverDue = server.nextDecision(
                lastPeerDelivery: lastPeerDelivery, idle: options.peerIdleBeforeServer, now: now)
            {
                due = min(due, serverDue)
            }
            if !server.enabled, links.isEmpty { due = min(due, lastProgress + options.stallTimeout + 0.001) }
            // Interest and pipelines follow events; a slow heartbeat catches what no event announces, and overdue
            // requests (at least 2 s late by definition, so a second's granularity is enough; finding the earliest
            // deadline at every event sorted every peer's requests per block).
            due = min(due, now + 1)
        }
        // Never sooner than a few milliseconds: a condition that a tick does not change must not spin.
        due = max(due, now + 0.005)
        guard wakeAt != due else { return }
        wakeAt = due
        emit(.wake(at: due))
    }
}
