import Testing

@testable import ChunkStore

@Suite("ChunkSet")
struct ChunkSetTests {
    @Test(arguments: [0, 1, 63, 64, 65, 130])
    func fullAndEmptySets(count: Int) {
        let full = ChunkSet(count: count, full: true)
        #expect(Array(full) == Array(0..<count))
        #expect(full.cardinality == count && full.isFull)
        #expect(!full.contains(count) && !full.contains(-1))
        #expect(Array(ChunkSet(count: count)).isEmpty)
    }

    @Test func insertRemoveAndIterateInOrder() {
        var set = ChunkSet(count: 200)
        var rng = SeededBytes(seed: 5)
        var model = Set<Int>()
        for _ in 0..<500 {
            let index = Int(rng.next() % 200)
            if rng.next() % 3 == 0 {
                #expect(set.remove(index) == model.remove(index).map { _ in true } ?? false)
            } else {
                #expect(set.insert(index) == model.insert(index).inserted)
            }
        }
        #expect(Array(set) == model.sorted())
        #expect(set.cardinality == model.count)
    }
}
