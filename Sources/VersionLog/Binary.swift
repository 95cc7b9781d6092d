import ChunkStore

/// Why a log entry's binary form was refused.
public enum LogEncodingError: Error, Equatable, Sendable {
    /// The input ended before the field `field`.
    case truncated(field: String)
    /// Bytes were left after the last field.
    case trailingBytes(count: Int)
    /// The whole entry is larger than `LogEntry.maximumEncodedSize`.
    case entryTooLarge(size: Int, limit: Int)
    /// A length prefix is over the field's documented limit (refused before anything is allocated).
    case fieldTooLong(field: String, length: Int, limit: Int)
    /// A text field is not valid UTF-8 or holds a control character.
    case invalidText(field: String)
    /// The format version byte is not one this code reads.
    case unknownFormatVersion(UInt8)
    /// The kind byte names no entry kind.
    case unknownKind(UInt8)
    /// An enumerated field holds a value outside its set.
    case unknownValue(field: String, value: UInt8)
    /// A value is outside its documented range (a negative time, a version number of zero).
    case outOfRange(field: String)
}

/// Writes the big-endian, length-prefixed fields of the log's canonical binary forms (docs/proofs.md §2).
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    mutating func u8(_ value: UInt8) { bytes.append(value) }

    mutating func u16(_ value: UInt16) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(value & 0xff))
    }

    mutating func u64(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((value >> UInt64(shift)) & 0xff)) }
    }

    mutating func raw(_ value: some Sequence<UInt8>) { bytes.append(contentsOf: value) }

    mutating func hash(_ value: Hash256) { value.withUnsafeBytes { bytes.append(contentsOf: $0) } }

    /// A u16 length and the UTF-8 bytes; the caller has checked the length against the field's limit.
    mutating func text(_ value: String) {
        let utf8 = Array(value.utf8)
        precondition(utf8.count <= Int(UInt16.max), "text field over 65535 bytes")
        u16(UInt16(utf8.count))
        bytes.append(contentsOf: utf8)
    }
}

/// Reads the fields `ByteWriter` writes; every length is checked against a limit before bytes are taken.
struct ByteReader {
    private let bytes: [UInt8]
    private var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func u8(_ field: String) throws(LogEncodingError) -> UInt8 {
        guard remaining >= 1 else { throw .truncated(field: field) }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16(_ field: String) throws(LogEncodingError) -> UInt16 {
        guard remaining >= 2 else { throw .truncated(field: field) }
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    mutating func u64(_ field: String) throws(LogEncodingError) -> UInt64 {
        guard remaining >= 8 else { throw .truncated(field: field) }
        var value: UInt64 = 0
        for i in 0..<8 { value = value << 8 | UInt64(bytes[offset + i]) }
        offset += 8
        return value
    }

    mutating func raw(_ field: String, count: Int) throws(LogEncodingError) -> [UInt8] {
        guard remaining >= count else { throw .truncated(field: field) }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    mutating func hash(_ field: String) throws(LogEncodingError) -> Hash256 {
        let raw = try raw(field, count: 32)
        guard let hash = Hash256(bytes: raw) else { throw .truncated(field: field) }
        return hash
    }

    /// A u16 length (refused above `limit` before the bytes are read) and UTF-8 text without control characters.
    mutating func text(_ field: String, limit: Int) throws(LogEncodingError) -> String {
        let length = Int(try u16(field))
        guard length <= limit else { throw .fieldTooLong(field: field, length: length, limit: limit) }
        let raw = try raw(field, count: length)
        guard let text = String(validating: raw, as: UTF8.self), Text.isPrintable(text) else {
            throw .invalidText(field: field)
        }
        return text
    }

    func finish() throws(LogEncodingError) {
        guard remaining == 0 else { throw .trailingBytes(count: remaining) }
    }
}

/// Checks shared by every text field of the log.
enum Text {
    /// True when `text` has no control character (below U+0020, or U+007F).
    static func isPrintable(_ text: String) -> Bool {
        !text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f }
    }
}
