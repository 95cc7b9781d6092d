/// One byte range of a file, both ends inclusive, as in `Range: bytes=first-last`.
///
/// Nextcloud honours a single range per request; a multi-range request is answered with the
/// whole file and 200, so this type deliberately holds exactly one range.
public struct ByteRange: Sendable, Hashable, CustomStringConvertible {
    /// Offset of the first byte.
    public let first: Int64
    /// Offset of the last byte (inclusive).
    public let last: Int64

    /// A range of `first...last`. Returns nil when the range is empty or negative.
    public init?(first: Int64, last: Int64) {
        guard first >= 0, last >= first else { return nil }
        self.first = first
        self.last = last
    }

    /// The range of `length` bytes starting at `offset`, or nil for a non-positive length.
    public init?(offset: Int64, length: Int64) {
        self.init(first: offset, last: offset + length - 1)
    }

    /// Number of bytes in the range.
    public var length: Int64 { last - first + 1 }

    /// The value of the `Range` request header.
    public var headerValue: String { "bytes=\(first)-\(last)" }

    public var description: String { "\(first)-\(last)" }
}

/// A parsed `Content-Range` response header (RFC 9110 §14.4).
public enum ContentRange: Sendable, Hashable {
    /// `bytes first-last/total`; `total` is nil for `*`.
    case satisfied(ByteRange, total: Int64?)
    /// `bytes */total`, sent with 416.
    case unsatisfied(total: Int64)

    /// Parses a header value; nil when it is not a well-formed single byte range.
    public init?(headerValue: String) {
        let value = headerValue.trimmingASCIIWhitespace()
        guard value.lowercased().hasPrefix("bytes ") else { return nil }
        let spec = value.dropFirst("bytes ".count).trimmingASCIIWhitespace()
        guard let slash = spec.firstIndex(of: "/") else { return nil }
        let rangePart = spec[..<slash]
        let totalPart = spec[spec.index(after: slash)...]
        let total: Int64?
        if totalPart == "*" {
            total = nil
        } else {
            guard let t = Self.decimal(totalPart) else { return nil }
            total = t
        }
        if rangePart == "*" {
            guard let total else { return nil }
            self = .unsatisfied(total: total)
            return
        }
        let ends = rangePart.split(separator: "-", omittingEmptySubsequences: false)
        guard ends.count == 2, let first = Self.decimal(ends[0]), let last = Self.decimal(ends[1]),
            let range = ByteRange(first: first, last: last)
        else { return nil }
        if let total, last >= total { return nil }
        self = .satisfied(range, total: total)
    }

    private static func decimal(_ text: Substring) -> Int64? {
        guard !text.isEmpty, text.utf8.count <= 18, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int64(text)
    }
}
