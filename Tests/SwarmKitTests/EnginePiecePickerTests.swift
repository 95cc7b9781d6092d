import ChunkStore
import Testing

@testable import SwarmKit

@Suite("Engine: piece picker")
struct EnginePiecePickerTests {
    typealias Picker = PiecePicker<String>

    @Test func picksTheRarestChunkThePeerHas() {
        var rng = EngineRandom(seed: 1)
        var picker = Picker(chunkCount: 10, randomFirstCount: 0)
        picker.peerJoined("a", has: ChunkSet(count: 10, full: true))
        picker.peerJoined("b", has: ChunkSet(count: 10, indexes: 0..<9))
        picker.peerJoined("c", has: ChunkSet(count: 10, indexes: [0, 1, 2, 3, 4, 5, 6, 7]))
        // Chunk 9 is only at a (availability 1), chunk 8 at a and b (2), the rest at all three (3).
        #expect(picker.next(for: "a", limit: 1, using: &rng) == [9])
        #expect(picker.next(for: "a", limit: 1, using: &rng) == [8])
        #expect(picker.availability(of: 8) == 2)
        let rest = picker.next(for: "a", limit: 8, using: &rng)
        #expect(Set(rest) == Set(0..<8))
        // Everything is in flight now: that is the endgame.
        #expect(picker.isEndgame)
    }

    @Test func aRestrictedPickIsTheRarestOfTheOfferedChunks() {
        var rng = EngineRandom(seed: 3)
        let count = 100_000
        var picker = Picker(chunkCount: count, randomFirstCount: 0)
        picker.peerJoined("origin", has: ChunkSet(count: count, full: true))
        picker.peerJoined("b", has: ChunkSet(count: count, indexes: [10, 20]))
        // Offered 10, 20 and 30: 30 is at the origin only, so it is the rarest.
        let offered = ChunkSet(count: count, indexes: [10, 20, 30])
        #expect(picker.next(for: "origin", limit: 1, restrictedTo: offered, using: &rng) == [30])
        #expect(Set(picker.next(for: "origin", limit: 5, restrictedTo: offered, using: &rng)) == [10, 20])
        #expect(picker.next(for: "origin", limit: 1, restrictedTo: offered, using: &rng).isEmpty)
    }

    @Test func tiesAreBrokenAtRandomAndNoChunkIsAskedTwiceBeforeEndgame() {
        var firsts = Set<Int>()
        for seed in 0..<50 {
            var rng = EngineRandom(seed: UInt64(seed))
            var picker = Picker(chunkCount: 64, randomFirstCount: 0)
            picker.peerJoined("a", has: ChunkSet(count: 64, full: true))
            let picks = picker.next(for: "a", limit: 64, using: &rng)
            #expect(Set(picks).count == 64)
            firsts.insert(picks[0])
        }
        #expect(firsts.count > 10)
    }

    @Test func randomFirstChunksIgnoreRarity() {
        // One chunk is rare; in the random-first phase it is not always the first pick, afterwards it always is.
        var rareFirst = 0
        for seed in 0..<100 {
            var rng = EngineRandom(seed: UInt64(seed))
            var picker = Picker(chunkCount: 32, randomFirstCount: 4)
            picker.peerJoined("a", has: ChunkSet(count: 32, full: true))
            picker.peerJoined("b", has: ChunkSet(count: 32, indexes: 1..<32))
            if picker.next(for: "a", limit: 1, using: &rng) == [0] { rareFirst += 1 }
        }
        #expect(rareFirst < 20)
        var rng = EngineRandom(seed: 7)
        var picker = Picker(chunkCount: 32, have: ChunkSet(count: 32, indexes: 20..<24), randomFirstCount: 4)
        picker.peerJoined("a", has: ChunkSet(count: 32, full: true))
        picker.peerJoined("b", has: ChunkSet(count: 32, indexes: 1..<32))
        #expect(picker.next(for: "a", limit: 1, using: &rng) == [0])
    }

    @Test func endgameDuplicatesAndCancelsTheOthers() {
        var rng = EngineRandom(seed: 3)
        var picker = Picker(chunkCount: 3, randomFirstCount: 0)
        picker.peerJoined("slow", has: ChunkSet(count: 3, full: true))
        picker.peerJoined("fast", has: ChunkSet(count: 3, full: true))
        let slowPicks = picker.next(for: "slow", limit: 3, using: &rng)
        #expect(slowPicks.count == 3 && picker.isEndgame)
        let fastPicks = picker.next(for: "fast", limit: 3, using: &rng)
        #expect(Set(fastPicks) == Set(slowPicks))
        // No third copy is requested from the same peer.
        #expect(picker.next(for: "fast", limit: 1, using: &rng).isEmpty)
        let cancels = picker.received(fastPicks[0], from: .peer("fast"))
        #expect(cancels == [.peer("slow")])
        #expect(!picker.outstanding(for: .peer("slow")).contains(fastPicks[0]))
        // A late duplicate is harmless.
        #expect(picker.received(fastPicks[0], from: .peer("slow")).isEmpty)
        #expect(picker.missingCount == 2)
    }

    /// In endgame a chunk is asked of two sources at most: with more, every copy but one is cut off by a cancel
    /// after its blocks in flight came, for nothing.
    @Test func endgameAsksAChunkOfTwoSourcesAtMost() {
        var rng = EngineRandom(seed: 5)
        var picker = Picker(chunkCount: 2, randomFirstCount: 0)
        for peer in ["a", "b", "c", "d"] { picker.peerJoined(peer, has: ChunkSet(count: 2, full: true)) }
        #expect(picker.next(for: "a", limit: 2, using: &rng).count == 2)
        #expect(picker.next(for: "b", limit: 2, using: &rng).count == 2)
        #expect(picker.next(for: "c", limit: 2, using: &rng).isEmpty)
        #expect(picker.next(for: "d", limit: 1, using: &rng).isEmpty)
        // One source gave up on a chunk: another may take its place.
        picker.failed(0, from: .peer("a"))
        #expect(picker.next(for: "c", limit: 2, using: &rng) == [0])
        // A late chunk (its sources have not delivered it for a while) may be asked of more.
        #expect(picker.next(for: "d", limit: 2, restrictedTo: nil, late: [1], using: &rng) == [1])
    }

    @Test func aPeerThatLeavesGivesItsChunksBack() {
        var rng = EngineRandom(seed: 4)
        var picker = Picker(chunkCount: 8, randomFirstCount: 0)
        picker.peerJoined("a", has: ChunkSet(count: 8, full: true))
        picker.peerJoined("b", has: ChunkSet(count: 8, full: true))
        let picks = picker.next(for: "a", limit: 4, using: &rng)
        picker.peerLeft("a")
        #expect(picker.availability(of: picks[0]) == 1)
        #expect(picker.outstanding(for: .peer("a")).isEmpty)
        let again = picker.next(for: "b", limit: 8, using: &rng)
        #expect(Set(again) == Set(0..<8))
    }

    @Test func failedChunkIsWantedAgainAndAskedElsewhere() {
        var rng = EngineRandom(seed: 5)
        var picker = Picker(chunkCount: 2, randomFirstCount: 0)
        picker.peerJoined("liar", has: ChunkSet(count: 2, full: true))
        picker.peerJoined("honest", has: ChunkSet(count: 2, full: true))
        let picks = picker.next(for: "liar", limit: 2, using: &rng)
        picker.failed(picks[0], from: .peer("liar"))
        picker.peerLeft("liar")
        #expect(Set(picker.next(for: "honest", limit: 2, using: &rng)) == Set(picks))
    }

    @Test func theServerIsAskedOnlyForChunksNoPeerHas() {
        var rng = EngineRandom(seed: 6)
        var picker = Picker(chunkCount: 10, randomFirstCount: 0)
        picker.peerJoined("a", has: ChunkSet(count: 10, indexes: 0..<7))
        let serverPicks = picker.nextForServer(limit: 10, using: &rng)
        #expect(Set(serverPicks) == Set(7..<10))
        #expect(Set(picker.next(for: "a", limit: 10, using: &rng)) == Set(0..<7))
        // When peers cannot fill the link the server may also take available chunks (endgame duplicates here).
        #expect(!picker.nextForServer(limit: 2, includeAvailable: true, using: &rng).isEmpty)
    }
}

@Suite("Engine: bitfields")
struct EngineBitfieldTests {
    @Test(arguments: [0, 1, 7, 8, 9, 100])
    func chunkSetAndBitfieldConvert(count: Int) {
        let set = ChunkSet(count: count, indexes: stride(from: 0, to: count, by: 3))
        let bitfield = set.bitfield
        #expect(bitfield.chunkCount == UInt32(count))
        #expect((0..<count).allSatisfy { bitfield.contains(UInt32($0)) == set.contains($0) })
        #expect(ChunkSet(bitfield) == set)
        if count > 0 { #expect(bitfield.bytes[0] & 0x80 != 0) }  // chunk 0 is the high bit of byte 0
    }
}
