internal import ChunkStore

/// A peer's messages: what it announces, its interest and choking, its requests, and the manifest pages.
extension SwarmEngine {
    mutating func receive(_ message: InboundMessage, from link: LinkID) {
        guard let peer = links[link] else { return }
        switch message {
        case .request(let block):
            guard !peer.amChoking else { return }
            do {
                try links[link]?.uploads.push(block)
            } catch {
                log(.warning, "peer queued too many requests", ["peer": peerName(link)])
                return drop(link, reason: .malformedMessage, fault: true)
            }
            emit(.queueUpload(link, .block(block)))
        case .cancel(let block):
            links[link]?.uploads.cancel(block)
        case .bitfield(let bitfield):
            links[link]?.rawBitfield = bitfield
            applyAnnouncements(link)
        case .have(let chunk):
            guard recordHave(chunk, from: link) else { return }
            applyAnnouncements(link)
        case .choke:
            links[link]?.peerChoking = true
            for (chunk, _) in peer.outstandingByAge {
                picker?.failed(chunk, from: .peer(link))
                emit(.discard(chunk: chunk, from: .peer(link)))
            }
            links[link]?.outstanding.removeAll()
        case .unchoke:
            links[link]?.peerChoking = false
            fill(link)
        case .interested:
            links[link]?.peerInterested = true
            adjustChokes()
        case .notInterested:
            links[link]?.peerInterested = false
            adjustChokes()
        case .piece(let chunk, let offset, let length):
            receivePiece(BlockRequest(chunk: chunk, offset: offset, length: UInt32(clamping: length)), from: link)
        case .manifestRequest(let page):
            queuePage(Int(page), from: link)
        case .manifestPage(let page):
            receivePage(page, from: link)
        case .peerExchange(let addresses):
            learn(addresses)
        }
    }

    /// Keeps a peer's `have` until its chunk set can take it. Before the manifest is known the haves go to a bit set
    /// of `chunkCountBound` chunks (at most 2 MiB), and an index past that bound is a fault. Returns false when the
    /// link was dropped or is gone.
    mutating func recordHave(_ chunk: UInt32, from link: LinkID) -> Bool {
        guard links[link] != nil else { return false }
        if manifest != nil {
            links[link]?.rawHaves.append(chunk)
            return true
        }
        let bound = chunkCountBound
        guard Int(chunk) < bound else {
            log(.warning, "peer announced a chunk past the file's end", ["peer": peerName(link)])
            drop(link, reason: .malformedMessage, fault: true)
            return false
        }
        var early = links[link]?.earlyHaves ?? ChunkSet(count: bound)
        early.insert(Int(chunk))
        links[link]?.earlyHaves = early
        return true
    }

    /// Turns a peer's raw announcements into its chunk set once the manifest is known, and updates the picker.
    mutating func applyAnnouncements(_ link: LinkID) {
        guard let manifest, var peer = links[link] else { return }
        let count = manifest.chunks.count
        let before = peer.theirs
        var theirs = before ?? ChunkSet(count: count)
        // The chunks this call adds: a whole bitfield once, then a few per `have` (walking the whole set at every
        // `have` would be quadratic over a large file).
        var added: [Int] = []
        if let bitfield = peer.rawBitfield {
            guard bitfield.chunkCount == count else { return drop(link, reason: .malformedMessage, fault: true) }
            theirs = ChunkSet(bitfield)
            added = theirs.filter { !(before?.contains($0) ?? false) }
            peer.rawBitfield = nil
        }
        // Chunks it announces that it was already counted as holding: a super-seeder counts a first copy as held once
        // it sent it, and this is its arrival.
        var confirmed: [Int] = []
        for chunk in peer.rawHaves {
            guard chunk < count else { return drop(link, reason: .malformedMessage, fault: true) }
            if theirs.insert(Int(chunk)) { added.append(Int(chunk)) } else { confirmed.append(Int(chunk)) }
        }
        peer.rawHaves.removeAll()
        for chunk in peer.earlyHaves ?? ChunkSet(count: 0) {
            guard chunk < count else { return drop(link, reason: .malformedMessage, fault: true) }
            if theirs.insert(chunk) { added.append(chunk) }
        }
        peer.earlyHaves = nil
        peer.theirs = theirs
        links[link] = peer
        if var seeder = superSeeder.take() {
            var released: [LinkID] = []
            for index in confirmed { seeder.arrived(index, at: link) }
            for index in added {
                if seeder.timesSent(index) == 0 {
                    seeder.seen(index)
                } else if let first = seeder.announced(index, by: link), !released.contains(first) {
                    released.append(first)
                }
            }
            superSeeder = consume seeder
            if !superSeeder!.isActive {
                superSeedingSettles()
            } else {
                // Offers made before this peer's announcements (a peer that joined late, from the web seed) may name
                // chunks it has: replace them with ones it lacks, or it would wait for offers that never come. Only
                // then: a top-up scans for candidates, and doing it at every `have` would be quadratic over a file.
                let offered = superSeeder!.offers(for: link)
                if !offered.isEmpty, added.contains(where: offered.contains) { offerNext(to: link) }
                // Peers whose first copies this announcement spread may take more.
                for first in released where first != link { offerNext(to: first) }
            }
        }
        if var picker {
            if peer.superSeeding {
                if picker.chunks(of: link) == nil { picker.peerJoined(link, has: ChunkSet(count: count, full: true)) }
            } else if before == nil || picker.chunks(of: link) == nil {
                picker.peerJoined(link, has: theirs)
            } else {
                for index in added { picker.peer(link, has: index) }
            }
            self.picker = picker
        }
        // More announced chunks can only add interest: once interested, there is nothing to recompute.
        if before == nil || !peer.amInterested { updateInterest(link) }
        fill(link)
    }
}
