public import ChunkStore

/// `Bitfield` is the wire form of a peer's chunks (MSB-first bytes); `ChunkSet` is the engine's in-memory set.
extension ChunkSet {
    /// The chunks a `bitfield` message announces.
    public init(_ bitfield: Bitfield) {
        self.init(count: Int(bitfield.chunkCount))
        for (byteIndex, byte) in bitfield.bytes.enumerated() where byte != 0 {
            for bit in 0..<8 where byte & (0x80 >> UInt8(bit)) != 0 {
                let index = byteIndex * 8 + bit
                if index < count { insert(index) }
            }
        }
    }

    /// The `bitfield` message announcing these chunks.
    public var bitfield: Bitfield {
        var bitfield = Bitfield(chunkCount: UInt32(count))
        for index in self { bitfield.insert(UInt32(index)) }
        return bitfield
    }
}
