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

    /// A super-seeder serves a chunk it sent to a peer again to that peer (it gave up on it: refused, it would ask
    /// again every few seconds and never have it, and nobody could take it from there), but not to another peer.
    @Test func aSuperSeederServesAChunkAgainToThePeerItWentTo() {
        var seeder = SuperSeeder<String>(chunkCount: 4)
        let none = ChunkSet(count: 4)
        #expect(seeder.nextOffers(for: "a", lacking: none, limit: 1) == [0])
        #expect(seeder.nextOffers(for: "b", lacking: none, limit: 1) == [1])
        seeder.sent(0, to: "a", at: 1)
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
