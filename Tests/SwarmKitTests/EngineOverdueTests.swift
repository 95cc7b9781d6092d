import ChunkStore
import Testing

@testable import SwarmKit

/// When a request is late: a chunk whose blocks keep coming is not given up however slow it is next to the peer's
/// earlier rate, and a super-seeder serves a chunk again to a peer that gave up on it.
@Suite("Engine: late requests")
struct EngineOverdueTests {
    static func requests(_ actions: [EngineAction], to link: LinkID) -> [BlockRequest] {
        actions.flatMap { action -> [BlockRequest] in
            guard case .send(link, let messages) = action else { return [] }
            return messages.compactMap { if case .request(let block) = $0 { block } else { nil } }
        }
    }

    /// A peer that delivered a chunk at once, then slows down (a busy origin sharing its uplink among more peers): the
    /// next chunk's blocks come every half second, ten times slower than the first chunk's rate would take. It stays
    /// requested to the end. Counted from the request, it was given up after about 2 s with most of its blocks in hand,
    /// and they were thrown away.
    @Test func aChunkWhoseBlocksKeepComingIsNotGivenUp() throws {
        var (engine, link, _) = try EngineHostileInputTests.fetchingEngine()
        _ = engine.handle(.received(link, .bitfield(ChunkSet(count: 8, full: true).bitfield)), at: 0)
        let asked = Self.requests(engine.handle(.received(link, .unchoke), at: 0), to: link)
        let chunks = Array(Set(asked.map(\.chunk))).sorted()
        try #require(chunks.count >= 2)
        var actions: [EngineAction] = []
        for block in asked where block.chunk == chunks[0] {
            actions += engine.handle(
                .received(link, .piece(chunk: block.chunk, offset: block.offset, length: Int(block.length))), at: 0.01)
        }
        #expect(actions.contains(.store(chunk: Int(chunks[0]), from: .peer(link))))
        let slow = asked.filter { $0.chunk == chunks[1] }
        var time = 0.01
        var given: [EngineAction] = []
        for block in slow {
            for _ in 0..<2 {
                time += 0.25
                given += engine.handle(.tick, at: time)
            }
            given += engine.handle(
                .received(link, .piece(chunk: block.chunk, offset: block.offset, length: Int(block.length))), at: time)
        }
        #expect(time > 3)
        #expect(!given.contains(.discard(chunk: Int(chunks[1]), from: .peer(link))))
        #expect(given.contains(.store(chunk: Int(chunks[1]), from: .peer(link))))
        // A chunk from which nothing comes is still given up.
        #expect(
            given.contains { if case .discard(let chunk, .peer(link)) = $0 { chunk != Int(chunks[1]) } else { false } })
    }

    /// A super-seeder of four chunks that offered chunk 0 to "a" and chunk 1 to "b", and sent chunk 0 to "a".
    static func seederThatSentChunk0ToA() -> SuperSeeder<String> {
        var seeder = SuperSeeder<String>(chunkCount: 4)
        let none = ChunkSet(count: 4)
        #expect(seeder.nextOffers(for: "a", lacking: none, limit: 1) == [0])
        #expect(seeder.nextOffers(for: "b", lacking: none, limit: 1) == [1])
        seeder.sent(0, to: "a", at: 1)
        return seeder
    }

    /// A peer that keeps asking for a chunk it was sent gets it once more, not again and again: each copy would take
    /// the origin's uplink from the first copies.
    @Test func aChunkIsServedAgainOnceNotOnEveryRequest() {
        var seeder = Self.seederThatSentChunk0ToA()
        var copies = 1
        for attempt in 0..<100 where seeder.mayServe(0, to: "a") {
            seeder.sent(0, to: "a", at: 2 + Double(attempt))
            copies += 1
        }
        #expect(copies == 2)
        #expect(seeder.isActive)
    }

    /// A super-seeder serves a chunk it sent to a peer again to that peer (it gave up on it: refused, it would ask
    /// again every few seconds and never have it, and nobody could take it from there), but not to another peer.
    @Test func aSuperSeederServesAChunkAgainToThePeerItWentTo() {
        var seeder = Self.seederThatSentChunk0ToA()
        #expect(seeder.isActive)
        #expect(seeder.mayServe(0, to: "a"))
        #expect(!seeder.mayServe(0, to: "b"))
        // Once it announced the chunk, it has it: no longer served to it while super-seeding.
        _ = seeder.announced(0, by: "a")
        #expect(!seeder.mayServe(0, to: "a"))
        // A departed peer's chunks are forgotten.
        seeder.sent(1, to: "b", at: 2)
        seeder.withdraw("b")
        #expect(!seeder.mayServe(1, to: "b"))
    }
}

/// Super-seeding ends when the last first copies arrive (and a moment more), and the recipient's own announcement is
/// that arrival: the origin counts a chunk as the recipient's once it sent it, and that announcement used to be dropped
/// as adding nothing, so super-seeding ended only when the patience ran out, before a tenth of the last copies had
/// arrived.
@Suite("Engine: the end of super-seeding hears the recipients")
struct EngineSuperSeedArrivalTests {
    static func key(_ byte: UInt8) -> [UInt8] { [byte] + [UInt8](repeating: 0, count: 31) }

    @Test func theRecipientsAnnouncementsEndSuperSeedingAtOnce() throws {
        let length = ChunkingParameters.default.avgSize
        let refs = (0..<2).map { index in
            ChunkRef(hash: Hash256(bytes: [UInt8](repeating: UInt8(index + 1), count: 32))!, length: length)
        }
        let manifest = try Manifest(parameters: .default, chunks: refs)
        var options = SwarmEngine.Options()
        options.superSeed = true
        var engine = SwarmEngine(
            root: manifest.root, chunking: .default, expectedSize: manifest.size, localKey: Self.key(1),
            options: options, seed: 5)
        _ = engine.handle(.seed(manifest), at: 0)
        let peers = [LinkID(1), LinkID(2)]
        var actions: [EngineAction] = []
        for (index, link) in peers.enumerated() {
            actions += engine.handle(
                .connected(
                    ConnectedPeer(
                        link: link, deviceKey: Self.key(UInt8(index + 2)), initiatedByUs: false, superSeeding: false,
                        listenAddress: nil)), at: 0)
        }
        for link in peers {
            actions += engine.handle(.received(link, .bitfield(ChunkSet(count: 2).bitfield)), at: 0)
            actions += engine.handle(.received(link, .interested), at: 0)
        }
        var offered: [(LinkID, UInt32)] = []
        for case .send(let link, let messages) in actions {
            for case .have(let chunk) in messages { offered.append((link, chunk)) }
        }
        #expect(Set(offered.map(\.1)) == [0, 1])
        for (link, chunk) in offered {
            let block = BlockRequest(chunk: chunk, offset: 0, length: UInt32(length))
            _ = engine.handle(.received(link, .request(block)), at: 1)
            let taken = engine.handle(.uploadTaken(link, .block(block)), at: 1)
            #expect(taken.contains { if case .serveBlock = $0 { true } else { false } })
            _ = engine.handle(.blockSent(link, block), at: 1)
        }
        #expect(engine.snapshot.superSeeding)
        var end: [EngineAction] = []
        for (link, chunk) in offered { end += engine.handle(.received(link, .have(chunk: chunk)), at: 1.2) }
        // It ends a moment later, so that the recipients' announcements reach the other peers before the bitfield.
        #expect(engine.snapshot.superSeeding)
        end += engine.handle(.tick, at: 1.2 + SwarmEngine.superSeedSettle + 0.01)
        #expect(!engine.snapshot.superSeeding)
        let full = ChunkSet(count: 2, full: true).bitfield
        #expect(
            end.contains { if case .send(_, let messages) = $0 { messages.contains(.bitfield(full)) } else { false } })
    }
}

/// In endgame a chunk may be asked of more than two sources only when none of them is expected to deliver it soon.
@Suite("Engine: late chunks in endgame")
struct EngineLateChunkTests {
    /// A peer that delivered its first chunk at `seconds` for 1 MiB: its other chunks are late when that rate makes
    /// them take longer than `SwarmEngine.endgameLate`.
    static func lateAfterAFirstChunk(taking seconds: Double) throws -> (late: Set<Int>, outstanding: Set<Int>) {
        var (engine, link, _) = try EngineHostileInputTests.fetchingEngine()
        _ = engine.handle(.received(link, .bitfield(ChunkSet(count: 8, full: true).bitfield)), at: 0)
        let asked = EngineOverdueTests.requests(engine.handle(.received(link, .unchoke), at: 0), to: link)
        let first = try #require(asked.first?.chunk)
        let blocks = asked.filter { $0.chunk == first }
        for (index, block) in blocks.enumerated() {
            let time = seconds * Double(index + 1) / Double(blocks.count)
            _ = EngineOriginFallbackTests.feed(
                &engine, .received(link, .piece(chunk: block.chunk, offset: block.offset, length: Int(block.length))),
                at: time)
        }
        let outstanding = Set(engine.links[link]?.outstanding.keys.map { $0 } ?? [])
        return (engine.lateChunks(), outstanding)
    }

    @Test func chunksFromASlowSourceAreLateAndFromAFastOneNot() throws {
        let slow = try Self.lateAfterAFirstChunk(taking: 4)
        #expect(!slow.outstanding.isEmpty)
        #expect(slow.late == slow.outstanding)
        let fast = try Self.lateAfterAFirstChunk(taking: 0.05)
        #expect(!fast.outstanding.isEmpty)
        #expect(fast.late.isEmpty)
    }
}
