public import ChunkStore

/// One leaf of the version log: a version of a file or an enrollment.
///
/// Canonical binary form (docs/proofs.md §2): `0x01` (format version) || kind (`0x01` version, `0x02` enrollment) ||
/// the entry's fields, big-endian, text as a u16 length and UTF-8. There is exactly one encoding of each entry, and
/// the leaf hash is the RFC 6962 leaf hash SHA-256(0x00 || encoding).
public enum LogEntry: Hashable, Sendable {
    case version(VersionEntry)
    case enrollment(EnrollmentEntry)

    /// The only format version this code writes and reads.
    public static let formatVersion: UInt8 = 1
    /// No encoded entry is longer (a version entry with both texts at 256 bytes is 767 bytes).
    public static let maximumEncodedSize = 1024

    private static let versionKind: UInt8 = 1
    private static let enrollmentKind: UInt8 = 2

    /// The canonical encoding.
    public var encoded: [UInt8] {
        var writer = ByteWriter(capacity: 320)
        writer.u8(Self.formatVersion)
        switch self {
        case .version(let entry):
            writer.u8(Self.versionKind)
            entry.write(to: &writer)
        case .enrollment(let entry):
            writer.u8(Self.enrollmentKind)
            entry.write(to: &writer)
        }
        return writer.bytes
    }

    /// Decodes one entry; refuses input over `maximumEncodedSize` before reading it, and any trailing byte.
    public init(encoded bytes: [UInt8]) throws(LogEncodingError) {
        guard bytes.count <= Self.maximumEncodedSize else {
            throw .entryTooLarge(size: bytes.count, limit: Self.maximumEncodedSize)
        }
        var reader = ByteReader(bytes)
        let format = try reader.u8("formatVersion")
        guard format == Self.formatVersion else { throw .unknownFormatVersion(format) }
        let kind = try reader.u8("kind")
        switch kind {
        case Self.versionKind: self = .version(try VersionEntry.read(from: &reader))
        case Self.enrollmentKind: self = .enrollment(try EnrollmentEntry.read(from: &reader))
        default: throw .unknownKind(kind)
        }
        try reader.finish()
    }

    /// The RFC 6962 leaf hash of the encoding.
    public var leafHash: Hash256 { Merkle.leafHash(encoded) }

    /// The entry's time, unix seconds.
    public var time: Int64 {
        switch self {
        case .version(let entry): entry.time
        case .enrollment(let entry): entry.time
        }
    }
}
