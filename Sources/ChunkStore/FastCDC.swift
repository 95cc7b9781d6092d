/// FastCDC content-defined chunking (the 2020 variant: two bytes per step, normalised chunking).
///
/// A boundary is a pure function of the bytes from the start of the chunk and of the parameters. The loop follows the
/// FastCDC 2020 paper as the Rust `fastcdc` crate (v2020 module) implements it, so the published vectors of that crate
/// reproduce exactly when its table is supplied:
///
/// - hashing starts at `minSize` rounded down to even, with hash 0;
/// - for each byte pair (a, a+1): `hash = hash << 2 + gearShifted[b[a]]`; if `hash & maskShifted == 0` the chunk
///   is `a` bytes long; then `hash += gear[b[a+1]]`; if `hash & mask == 0` it is `a + 1` bytes long;
/// - the small mask (more bits, harder to match) applies below `avgSize`, the large mask above it;
/// - input of at most `minSize` bytes is one chunk; with no cut found, the chunk is `min(remaining, maxSize)` bytes.
public struct FastCDC: Sendable {
    public let parameters: ChunkingParameters
    let table: GearTable
    let maskSmall: UInt64
    let maskLarge: UInt64

    /// A chunker with harp's gear table; the parameters must validate.
    public init(parameters: ChunkingParameters = .default) throws(ChunkStoreError) {
        try parameters.validate()
        self.init(parameters: parameters, table: .harpV1)
    }

    /// A chunker with an explicit table (the reference vectors use the crate's).
    public init(parameters: ChunkingParameters, table: GearTable) {
        self.parameters = parameters
        self.table = table
        let bits = parameters.averageBits
        self.maskSmall = table.masks[bits + parameters.normalization]
        self.maskLarge = table.masks[bits - parameters.normalization]
    }

    /// Finds the first cut in `bytes`, which start at a chunk boundary.
    ///
    /// Call it with at least `maxSize` bytes unless the input ends sooner: the answer depends only on the first
    /// `maxSize` bytes. Returns the chunk length (at least 1 for non-empty input) and the gear hash at the cut.
    @inlinable
    public func cut(_ bytes: UnsafeRawBufferPointer) -> (length: Int, hash: UInt64) {
        cutImpl(bytes)
    }

    @usableFromInline
    func cutImpl(_ bytes: UnsafeRawBufferPointer) -> (length: Int, hash: UInt64) {
        var remaining = bytes.count
        let minSize = parameters.minSize
        if remaining <= minSize { return (remaining, 0) }
        var center = parameters.avgSize
        if remaining > parameters.maxSize {
            remaining = parameters.maxSize
        } else if remaining < center {
            center = remaining
        }
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return (0, 0) }
        let maskS = maskSmall, maskL = maskLarge
        let maskSShifted = maskS &<< 1, maskLShifted = maskL &<< 1
        return table.gear.withUnsafeBufferPointer { gearBuffer in
            table.gearShifted.withUnsafeBufferPointer { shiftedBuffer in
                let gear = gearBuffer.baseAddress!
                let shifted = shiftedBuffer.baseAddress!
                var hash: UInt64 = 0
                var index = minSize / 2
                let centerPairs = center / 2
                while index < centerPairs {
                    let a = index &* 2
                    hash = (hash &<< 2) &+ shifted[Int(base[a])]
                    if hash & maskSShifted == 0 { return (a, hash) }
                    hash = hash &+ gear[Int(base[a &+ 1])]
                    if hash & maskS == 0 { return (a &+ 1, hash) }
                    index &+= 1
                }
                let endPairs = remaining / 2
                while index < endPairs {
                    let a = index &* 2
                    hash = (hash &<< 2) &+ shifted[Int(base[a])]
                    if hash & maskLShifted == 0 { return (a, hash) }
                    hash = hash &+ gear[Int(base[a &+ 1])]
                    if hash & maskL == 0 { return (a &+ 1, hash) }
                    index &+= 1
                }
                return (remaining, hash)
            }
        }
    }

    /// Cuts a whole in-memory buffer; returns (offset, length, hash) for each chunk in order.
    public func chunks(of bytes: UnsafeRawBufferPointer) -> [(offset: Int, length: Int, hash: UInt64)] {
        var result: [(offset: Int, length: Int, hash: UInt64)] = []
        var offset = 0
        while offset < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            let (length, hash) = cut(rest)
            result.append((offset, length, hash))
            offset += length
        }
        return result
    }

    /// Cuts a byte array; see `chunks(of:)`.
    public func chunks(of bytes: [UInt8]) -> [(offset: Int, length: Int, hash: UInt64)] {
        bytes.withUnsafeBytes { chunks(of: $0) }
    }
}
