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
        // Every chunk left once; super-seeding lasts until their arrival is announced.
        #expect(seeder.isActive)
        for (index, peer) in [(0, "a"), (1, "b"), (2, "b")] { _ = seeder.announced(index, by: peer) }
        #expect(!seeder.isActive)

        var active = SuperSeeder<String>(chunkCount: 4)
        _ = active.nextOffers(for: "a", lacking: ChunkSet(count: 4), limit: 1)
        active.sent(0, to: "a")
        active.withdraw("a")
        active.lost(0)
        #expect(active.timesSent(0) == 0)
        // Chunk 0 is offered again at once, before the chunks never sent (the cursor is past it: offered when the
        // cursor came round, a lost chunk was one of the last first copies).
        #expect(active.nextOffers(for: "c", lacking: ChunkSet(count: 4), limit: 1) == [0])
        active.withdraw("c")
        var offered: [Int] = []
        for _ in 0..<4 {
            let next = active.nextOffers(for: "b", lacking: ChunkSet(count: 4, indexes: offered), limit: 1)
            offered += next
            for index in next { active.sent(index, to: "b") }
        }
        #expect(Set(offered) == [0, 1, 2, 3])
        for index in offered { _ = active.announced(index, by: "b") }
        #expect(!active.isActive)
        // A chunk that was never sent cannot be lost, and an index outside the file is ignored.
        var fresh = SuperSeeder<String>(chunkCount: 2)
        fresh.lost(1)
        fresh.lost(7)
        #expect(fresh.isActive && fresh.timesSent(1) == 0)
    }
}

/// A chunk offered to a peer that left before taking it is offered next, not when the cursor comes round to it.
@Suite("Super-seeder: offers of a departed peer")
struct SuperSeederWithdrawnOfferTests {
    @Test func aChunkOfferedToADepartedPeerIsOfferedNext() {
        var seeder = SuperSeeder<String>(chunkCount: 6)
        let none = ChunkSet(count: 6)
        #expect(seeder.nextOffers(for: "a", lacking: none, limit: 2) == [0, 1])
        #expect(seeder.nextOffers(for: "b", lacking: none, limit: 1) == [2])
        seeder.sent(0, to: "a")
        seeder.withdraw("a")
        // Chunk 0 left and is the departed peer's (`lost` handles it when nobody else has it); chunk 1 never left.
        #expect(seeder.nextOffers(for: "c", lacking: none, limit: 1) == [1])
        #expect(seeder.nextOffers(for: "b", lacking: ChunkSet(count: 6, indexes: [2]), limit: 1) == [3])
    }
}

/// A departure that loses many chunks at once: each is requeued once, in loss order, in time linear in the chunks.
@Suite("Super-seeder: a departure that loses a large file's chunks", .timeLimit(.minutes(1)))
struct SuperSeederMassLossTests {
    @Test func everyLostChunkIsOfferedAgainOnceInLossOrder() {
        let count = 200_000
        var seeder = SuperSeeder<String>(chunkCount: count)
        let none = ChunkSet(count: count)
        var taken: [Int] = []
        while taken.count < count {
            let offered = seeder.nextOffers(for: "a", lacking: none, limit: 4096)
            for index in offered { seeder.sent(index, to: "a") }
            taken += offered
        }
        seeder.withdraw("a")
        // Lost in reverse order; some are then announced by a peer that took them elsewhere and lost again while
        // still waiting to be offered (no second entry).
        for index in taken.reversed() { seeder.lost(index) }
        for index in taken.prefix(1000) {
            seeder.seen(index)
            seeder.lost(index)
        }
        var again: [Int] = []
        while true {
            let offered = seeder.nextOffers(for: "b", lacking: none, limit: 4096)
            if offered.isEmpty { break }
            for index in offered { seeder.sent(index, to: "b") }
            again += offered
        }
        #expect(again == Array(taken.reversed()))
    }
}

/// BitTorrent's super-seeding rule: a peer gets its next first copy once it has passed the last ones on.
@Suite("Super-seeder: first copies spread before more are offered")
struct SuperSeederSpreadTests {
    static let none = ChunkSet(count: 8)

    /// A peer holding `spread` chunks from the seeder that nobody else announced is offered nothing new; another
    /// peer's announcement of one of them releases it.
    @Test func aPeerIsOfferedMoreOnceItsFirstCopiesSpread() {
        var seeder = SuperSeeder<String>(chunkCount: 8)
        for expected in [0, 1] {
            #expect(
                seeder.nextOffers(for: "a", lacking: Self.none, limit: 1, spread: 2, patience: 5, now: 0) == [expected])
            seeder.sent(expected, to: "a", at: 0)
        }
        #expect(seeder.nextOffers(for: "a", lacking: Self.none, limit: 1, spread: 2, patience: 5, now: 1).isEmpty)
        // Its own announcement is no spread; an announcement by the one who took it is ignored.
        #expect(seeder.announced(0, by: "a") == nil)
        #expect(seeder.nextOffers(for: "a", lacking: Self.none, limit: 1, spread: 2, patience: 5, now: 1).isEmpty)
        #expect(seeder.announced(0, by: "b") == "a")
        #expect(seeder.announced(0, by: "c") == nil)
        #expect(seeder.nextOffers(for: "a", lacking: Self.none, limit: 1, spread: 2, patience: 5, now: 1) == [2])
        // Without the rule (one peer interested), the window alone limits offers.
        seeder.sent(2, to: "a", at: 1)
        #expect(seeder.nextOffers(for: "a", lacking: Self.none, limit: 1, now: 1) == [3])
    }

    /// First copies that have not spread within the patience stop holding the peer back (nobody may ask it).
    @Test func unspreadCopiesOlderThanThePatienceNoLongerCount() {
        var seeder = SuperSeeder<String>(chunkCount: 8)
        for index in [0, 1] {
            _ = seeder.nextOffers(for: "a", lacking: Self.none, limit: 1, spread: 2, patience: 5, now: 0)
            seeder.sent(index, to: "a", at: 0)
        }
        #expect(seeder.nextOffers(for: "a", lacking: Self.none, limit: 1, spread: 2, patience: 5, now: 4.9).isEmpty)
        #expect(seeder.nextOffers(for: "a", lacking: Self.none, limit: 1, spread: 2, patience: 5, now: 5.1) == [2])
    }

    /// A peer that leaves takes its unspread chunks' bookkeeping with it: a later announcement releases no one.
    @Test func aDepartedPeerIsNotReleased() {
        var seeder = SuperSeeder<String>(chunkCount: 8)
        _ = seeder.nextOffers(for: "a", lacking: Self.none, limit: 1, spread: 1, patience: 5, now: 0)
        seeder.sent(0, to: "a", at: 0)
        seeder.withdraw("a")
        #expect(seeder.announced(0, by: "b") == nil)
    }
}

/// Super-seeding ends when every chunk is in the swarm, not when the last first copy leaves: fetchers see the seeder's
/// full bitfield at that moment, and a chunk on its way to its first recipient was then held by the seeder alone.
@Suite("Super-seeder: the end waits for the last first copies to arrive")
struct SuperSeederEndTests {
    @Test func superSeedingLastsUntilTheLastFirstCopyIsAnnounced() {
        var seeder = SuperSeeder<String>(chunkCount: 2)
        #expect(seeder.nextOffers(for: "a", lacking: ChunkSet(count: 2), limit: 2) == [0, 1])
        seeder.sent(0, to: "a", at: 1)
        seeder.sent(1, to: "a", at: 1)
        #expect(seeder.isActive)
        #expect(seeder.announced(0, by: "a") == nil)
        #expect(seeder.isActive)
        // Another peer's announcement counts as well (the chunk spread before its recipient's `have` came back).
        #expect(seeder.announced(1, by: "b") == "a")
        #expect(!seeder.isActive)
    }

    /// A first copy nobody announces counts as arrived after the patience: a peer that keeps quiet about what it took
    /// does not keep the seeder from announcing everything.
    @Test func aFirstCopyNobodyAnnouncesEndsSuperSeedingAfterThePatience() {
        var seeder = SuperSeeder<String>(chunkCount: 1)
        _ = seeder.nextOffers(for: "a", lacking: ChunkSet(count: 1), limit: 1)
        seeder.sent(0, to: "a", at: 10)
        seeder.expireArrivals(now: 14.9, patience: 5)
        #expect(seeder.isActive)
        seeder.expireArrivals(now: 15.1, patience: 5)
        #expect(!seeder.isActive)
    }

    /// A chunk lost with its recipient is not waited for: it is unsent again, and offered.
    @Test func aLostFirstCopyIsNotWaitedFor() {
        var seeder = SuperSeeder<String>(chunkCount: 1)
        _ = seeder.nextOffers(for: "a", lacking: ChunkSet(count: 1), limit: 1)
        seeder.sent(0, to: "a", at: 0)
        seeder.withdraw("a")
        seeder.lost(0)
        #expect(seeder.nextOffers(for: "b", lacking: ChunkSet(count: 1), limit: 1) == [0])
        seeder.sent(0, to: "b", at: 1)
        _ = seeder.announced(0, by: "b")
        #expect(!seeder.isActive)
    }
}
