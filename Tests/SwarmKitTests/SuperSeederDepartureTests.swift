import ChunkStore
import Testing

@testable import SwarmKit

/// A super-seeder whose peers leave early or arrive late (issue 14's two faults, at the level of the value type).
@Suite("Super-seeder: late and departing peers")
struct SuperSeederDepartureTests {
    /// A chunk sent to a peer that left before passing it on is offered again, and super-seeding stays on for it.
    @Test func aChunkLostWithADepartingPeerIsOfferedAgain() {
        var seeder = SuperSeeder<String>(chunkCount: 3)
        let none = ChunkSet(count: 3)
        #expect(seeder.nextOffers(for: "a", lacking: none, limit: 1) == [0])
        seeder.sent(0, to: "a")
        #expect(seeder.nextOffers(for: "b", lacking: none, limit: 1) == [1])
        seeder.sent(1, to: "b")
        #expect(seeder.nextOffers(for: "b", lacking: ChunkSet(count: 3, indexes: [1]), limit: 1) == [2])
        seeder.sent(2, to: "b")
        #expect(!seeder.isActive)

        var active = SuperSeeder<String>(chunkCount: 4)
        _ = active.nextOffers(for: "a", lacking: ChunkSet(count: 4), limit: 1)
        active.sent(0, to: "a")
        active.withdraw("a")
        active.lost(0)
        #expect(active.timesSent(0) == 0)
        // Chunk 0 is offered again (before the chunks never sent further on: the cursor wraps to it in turn).
        var offered: [Int] = []
        for _ in 0..<4 {
            let next = active.nextOffers(for: "b", lacking: ChunkSet(count: 4, indexes: offered), limit: 1)
            offered += next
            for index in next { active.sent(index, to: "b") }
        }
        #expect(Set(offered) == [0, 1, 2, 3])
        #expect(!active.isActive)
        // A chunk that was never sent cannot be lost, and an index outside the file is ignored.
        var fresh = SuperSeeder<String>(chunkCount: 2)
        fresh.lost(1)
        fresh.lost(7)
        #expect(fresh.isActive && fresh.timesSent(1) == 0)
    }
}
