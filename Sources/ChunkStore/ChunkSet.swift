/// A set of chunk indexes `0..<count`, stored as a bitmap (one bit per chunk: 64 KiB for a 500 GB file).
public struct ChunkSet: Hashable, Sendable, Sequence {
    /// The number of chunks the set ranges over.
    public let count: Int
    private var words: [UInt64]
    /// How many indexes are in the set.
    public private(set) var cardinality: Int

    /// An empty set over `count` chunks, or a full one with `full: true`.
    public init(count: Int, full: Bool = false) {
        precondition(count >= 0)
        self.count = count
        let wordCount = (count + 63) / 64
        words = Array(repeating: full ? ~0 : 0, count: wordCount)
        cardinality = full ? count : 0
        if full, count % 64 != 0 { words[wordCount - 1] = (1 << UInt64(count % 64)) - 1 }
    }

    /// A set over `count` chunks holding `indexes` (indexes outside the range are ignored).
    public init(count: Int, indexes: some Sequence<Int>) {
        self.init(count: count)
        for index in indexes where index >= 0 && index < count { insert(index) }
    }

    public func contains(_ index: Int) -> Bool {
        guard index >= 0, index < count else { return false }
        return words[index >> 6] & (1 << UInt64(index & 63)) != 0
    }

    /// Inserts `index`; returns whether it was new.
    @discardableResult
    public mutating func insert(_ index: Int) -> Bool {
        precondition(index >= 0 && index < count, "chunk index out of range")
        let bit: UInt64 = 1 << UInt64(index & 63)
        guard words[index >> 6] & bit == 0 else { return false }
        words[index >> 6] |= bit
        cardinality += 1
        return true
    }

    /// Removes `index`; returns whether it was present.
    @discardableResult
    public mutating func remove(_ index: Int) -> Bool {
        guard contains(index) else { return false }
        words[index >> 6] &= ~(1 << UInt64(index & 63))
        cardinality -= 1
        return true
    }

    public var isEmpty: Bool { cardinality == 0 }
    public var isFull: Bool { cardinality == count }

    public func makeIterator() -> some IteratorProtocol<Int> {
        var wordIndex = 0
        var current = words.first ?? 0
        let words = self.words
        return AnyIterator<Int> {
            while current == 0 {
                wordIndex += 1
                guard wordIndex < words.count else { return nil }
                current = words[wordIndex]
            }
            let bit = current.trailingZeroBitCount
            current &= current - 1
            return wordIndex * 64 + bit
        }
    }
}
