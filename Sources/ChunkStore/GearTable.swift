internal import Crypto

/// The 256-entry random table and the cut masks that FastCDC's gear hash uses.
///
/// harp's table is derived, not copied: entry i is the first 8 bytes (big-endian) of
/// SHA-256("harp/v1/gear" || i as one byte). The mask with n one-bits puts them at bit positions
/// 63 - floor(k * 48 / n) for k in 0..<n, spreading them over the high 48 bits of the 64-bit hash, so that every
/// mask bit depends on many of the most recent bytes. Tests also load the FastCDC 2020 reference table and masks
/// to check that the cut algorithm itself matches the published vectors.
public struct GearTable: Sendable {
    /// The name recorded in manifests for harp's own table.
    public static let harpV1Name = "harp-v1"
    /// Masks exist for 0...maxMaskBits one-bits.
    public static let maxMaskBits = 30

    let gear: [UInt64]
    let gearShifted: [UInt64]
    let masks: [UInt64]

    /// A table from explicit values: `gear` has 256 entries; `masks[n]` is the mask with n bits; `seed` is XORed into
    /// every gear entry (and `seed << 1` into the shifted table), as FastCDC 2020 defines it.
    public init(gear: [UInt64], masks: [UInt64], seed: UInt64 = 0) {
        precondition(gear.count == 256, "a gear table has 256 entries")
        self.gear = gear.map { $0 ^ seed }
        self.gearShifted = gear.map { ($0 &<< 1) ^ (seed &<< 1) }
        self.masks = masks
    }

    /// harp's own table (see the type's documentation).
    public static let harpV1: GearTable = {
        var gear = [UInt64]()
        gear.reserveCapacity(256)
        for i in 0..<256 {
            var hasher = SHA256()
            hasher.update(data: Array("harp/v1/gear".utf8) + [UInt8(i)])
            let digest = Array(hasher.finalize())
            var value: UInt64 = 0
            for b in digest.prefix(8) { value = value << 8 | UInt64(b) }
            gear.append(value)
        }
        var masks = [UInt64]()
        for n in 0...maxMaskBits {
            var mask: UInt64 = 0
            for k in 0..<n { mask |= 1 << UInt64(63 - (k * 48) / n) }
            masks.append(mask)
        }
        return GearTable(gear: gear, masks: masks)
    }()
}
