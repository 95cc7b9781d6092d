/// The parameters that, together with the bytes, decide every chunk boundary.
///
/// They are recorded in each manifest, so a version can always be re-chunked the same way.
public struct ChunkingParameters: Codable, Hashable, Sendable {
    /// No chunk is shorter than this, except the last one of a file.
    public var minSize: Int
    /// The size the normalised cut-point distribution centres on; rounded to a power of two for the masks.
    public var avgSize: Int
    /// No chunk is longer than this.
    public var maxSize: Int
    /// FastCDC normalisation level (0 = none, 1 and 2 as in the FastCDC paper, 3 the tightest).
    public var normalization: Int
    /// Which gear table and mask rule are used; only `GearTable.harpV1Name` is defined.
    public var gear: String

    /// Average 1 MiB, minimum 256 KiB, maximum 4 MiB, normalisation level 1, harp's own gear table.
    public static let `default` = ChunkingParameters(
        minSize: 256 * 1024,
        avgSize: 1024 * 1024,
        maxSize: 4 * 1024 * 1024,
        normalization: 1,
        gear: GearTable.harpV1Name
    )

    /// The largest chunk any parameters may produce: peers refuse manifests that claim more.
    public static let largestAllowedMaxSize = 16 * 1024 * 1024

    public init(minSize: Int, avgSize: Int, maxSize: Int, normalization: Int, gear: String = GearTable.harpV1Name) {
        self.minSize = minSize
        self.avgSize = avgSize
        self.maxSize = maxSize
        self.normalization = normalization
        self.gear = gear
    }

    /// log2 of the average size, rounded to the nearest integer (the crate's `bits`).
    var averageBits: Int {
        var bits = 0
        while (1 << (bits + 1)) <= avgSize { bits += 1 }
        // Round to nearest: compare against the midpoint between 2^bits and 2^(bits+1).
        let low = 1 << bits
        return avgSize - low >= low / 2 ? bits + 1 : bits
    }

    /// Throws `ChunkStoreError.invalidParameters` unless the parameters are usable.
    public func validate() throws(ChunkStoreError) {
        guard minSize >= 64, minSize <= avgSize, avgSize <= maxSize,
            maxSize <= ChunkingParameters.largestAllowedMaxSize
        else {
            throw .invalidParameters("sizes must satisfy 64 <= min <= avg <= max <= 16 MiB")
        }
        guard (0...3).contains(normalization) else {
            throw .invalidParameters("normalization must be 0...3")
        }
        let bits = averageBits
        guard bits - normalization >= 5, bits + normalization <= GearTable.maxMaskBits else {
            throw .invalidParameters("average size out of range for the masks")
        }
        guard gear == GearTable.harpV1Name else {
            throw .invalidParameters("unknown gear table \(gear)")
        }
    }
}
