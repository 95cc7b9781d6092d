public import Crypto
import HarpBasics

/// A 32-byte SHA-256 digest: a chunk hash, a Merkle node or a content root.
///
/// Stored inline as four words, so a manifest of half a million chunks costs no per-chunk allocation.
public struct Hash256: Hashable, Sendable, Comparable, CustomStringConvertible {
    @usableFromInline var w0: UInt64
    @usableFromInline var w1: UInt64
    @usableFromInline var w2: UInt64
    @usableFromInline var w3: UInt64

    /// The digest of zero bytes of input is not this; this is 32 zero bytes, used only as a placeholder.
    public static let zero = Hash256(w0: 0, w1: 0, w2: 0, w3: 0)

    @usableFromInline init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64) {
        self.w0 = w0
        self.w1 = w1
        self.w2 = w2
        self.w3 = w3
    }

    /// Creates a digest from exactly 32 bytes; returns nil for any other length.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &words) { dst in
            for (i, b) in bytes.enumerated() { dst[i] = b }
        }
        self.init(w0: words.0, w1: words.1, w2: words.2, w3: words.3)
    }

    /// Creates a digest from a swift-crypto SHA-256 digest.
    public init(_ digest: SHA256Digest) {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &words) { dst in
            digest.withUnsafeBytes { src in dst.copyMemory(from: src) }
        }
        self.init(w0: words.0, w1: words.1, w2: words.2, w3: words.3)
    }

    /// Parses 64 hexadecimal digits (either case); returns nil for anything else.
    public init?(hex: some StringProtocol) {
        guard let bytes = Hex.decode(hex, count: 32) else { return nil }
        self.init(bytes: bytes)
    }

    /// Calls `body` with the 32 bytes of the digest.
    @inlinable
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var words = (w0, w1, w2, w3)
        return try Swift.withUnsafeBytes(of: &words) { try body($0) }
    }

    /// The 32 bytes of the digest.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// Lowercase hexadecimal, 64 characters.
    public var hex: String {
        withUnsafeBytes { Hex.encode($0) }
    }

    public var description: String { hex }

    /// Lexicographic order of the bytes.
    public static func < (lhs: Hash256, rhs: Hash256) -> Bool {
        lhs.withUnsafeBytes { l in rhs.withUnsafeBytes { r in l.lexicographicallyPrecedes(r) } }
    }

    /// SHA-256 of `data`.
    public static func sha256(_ data: UnsafeRawBufferPointer) -> Hash256 {
        var hasher = SHA256()
        hasher.update(bufferPointer: data)
        return Hash256(hasher.finalize())
    }

    /// SHA-256 of the segments one after the other (a chunk kept as the blocks it arrived in).
    public static func sha256(segments: [UnsafeRawBufferPointer]) -> Hash256 {
        var hasher = SHA256()
        for segment in segments { hasher.update(bufferPointer: segment) }
        return Hash256(hasher.finalize())
    }

    /// SHA-256 of `bytes`.
    public static func sha256(_ bytes: [UInt8]) -> Hash256 {
        bytes.withUnsafeBytes { sha256($0) }
    }
}

extension Hash256: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = Hash256(hex: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected 64 hex digits")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hex)
    }
}
