/// The binary form of a manifest, used in sidecars and on the wire.
///
/// ```
/// magic "HRPM" | format u8 = 1 | minSize u32 | avgSize u32 | maxSize u32 | normalization u8
/// | gear name length u8 | gear name (UTF-8) | size u64 | count u32 | count × (hash 32 bytes | length u32)
/// ```
/// All integers are big-endian. Decoding checks every length before it allocates.
extension Manifest {
    static let magic: [UInt8] = Array("HRPM".utf8)
    static let formatVersion: UInt8 = 1
    /// The most chunks a decoded manifest may claim (16 TiB at the 1 MiB average, far beyond any real file).
    public static let maxChunkCount = 16 * 1024 * 1024

    /// The binary encoding.
    public func encoded() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(64 + chunks.count * 36)
        out += Manifest.magic
        out.append(Manifest.formatVersion)
        out.appendBigEndian(UInt32(parameters.minSize))
        out.appendBigEndian(UInt32(parameters.avgSize))
        out.appendBigEndian(UInt32(parameters.maxSize))
        out.append(UInt8(parameters.normalization))
        let gear = Array(parameters.gear.utf8.prefix(255))
        out.append(UInt8(gear.count))
        out += gear
        out.appendBigEndian(UInt64(size))
        out.appendBigEndian(UInt32(chunks.count))
        for chunk in chunks {
            chunk.hash.withUnsafeBytes { out.append(contentsOf: $0) }
            out.appendBigEndian(UInt32(chunk.length))
        }
        return out
    }

    /// Decodes a manifest; throws `manifestMismatch` on any malformed input. Does not check a root.
    public init(encoded bytes: [UInt8]) throws(ChunkStoreError) {
        var reader = ByteReader(bytes)
        guard reader.take(4).map(Array.init) == Manifest.magic else { throw .manifestMismatch("not a manifest") }
        guard reader.takeByte() == Manifest.formatVersion else { throw .manifestMismatch("unknown manifest format") }
        guard let minSize = reader.takeUInt32(), let avgSize = reader.takeUInt32(), let maxSize = reader.takeUInt32(),
            let normalization = reader.takeByte(), let gearLength = reader.takeByte(),
            let gearBytes = reader.take(Int(gearLength)), let size = reader.takeUInt64(),
            let count = reader.takeUInt32()
        else { throw .manifestMismatch("truncated header") }
        let parameters = ChunkingParameters(
            minSize: Int(minSize), avgSize: Int(avgSize), maxSize: Int(maxSize), normalization: Int(normalization),
            gear: String(decoding: gearBytes, as: UTF8.self))
        do { try parameters.validate() } catch { throw .manifestMismatch(error.description) }
        guard Int(count) <= Manifest.maxChunkCount, reader.remaining == Int(count) * 36 else {
            throw .manifestMismatch("chunk count \(count) does not match the body")
        }
        var chunks = [ChunkRef]()
        chunks.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let hashBytes = reader.take(32), let hash = Hash256(bytes: hashBytes),
                let length = reader.takeUInt32()
            else { throw .manifestMismatch("truncated chunk list") }
            chunks.append(ChunkRef(hash: hash, length: Int(length)))
        }
        try self.init(parameters: parameters, chunks: chunks)
        guard self.size == Int64(bitPattern: size) else {
            throw .manifestMismatch("size \(size) is not the sum of the chunk lengths")
        }
    }
}

extension [UInt8] {
    mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }
}

/// A bounds-checked cursor over bytes; every `take` returns nil rather than reading past the end.
struct ByteReader {
    private let bytes: [UInt8]
    private var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - index }

    mutating func take(_ count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, count <= remaining else { return nil }
        defer { index += count }
        return bytes[index..<index + count]
    }

    mutating func takeByte() -> UInt8? { take(1)?.first }

    mutating func takeUInt32() -> UInt32? {
        take(4).map { $0.reduce(0) { $0 << 8 | UInt32($1) } }
    }

    mutating func takeUInt64() -> UInt64? {
        take(8).map { $0.reduce(0) { $0 << 8 | UInt64($1) } }
    }
}
