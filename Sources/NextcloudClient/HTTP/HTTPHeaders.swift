/// Response or request header fields in the order they were sent, duplicates kept.
///
/// Names compare case-insensitively: Nextcloud sends `Content-type` on some answers and
/// `Content-Type` on others, and HTTP/2 sends every name in lower case.
public struct HTTPHeaders: Sendable, Equatable, Sequence {
    /// One header line.
    public struct Field: Sendable, Equatable {
        public let name: String
        public let value: String
    }

    private var fields: [Field] = []

    /// An empty header list.
    public init() {}

    /// A header list from name/value pairs, in order.
    public init(_ pairs: [(String, String)]) {
        fields = pairs.map { Field(name: $0.0, value: $0.1) }
    }

    /// Appends a field, keeping any earlier field of the same name.
    public mutating func add(name: String, value: String) {
        fields.append(Field(name: name, value: value))
    }

    /// The first value of `name` (case-insensitive), or nil.
    public subscript(name: String) -> String? {
        fields.first { $0.name.caseInsensitiveEquals(name) }?.value
    }

    /// Every value of `name` (case-insensitive), in order.
    public func values(for name: String) -> [String] {
        fields.filter { $0.name.caseInsensitiveEquals(name) }.map(\.value)
    }

    public func makeIterator() -> IndexingIterator<[Field]> {
        fields.makeIterator()
    }

    /// Parses one raw header line (`Name: value`, with or without the CRLF) into the list.
    /// Lines without a colon (status lines, folded continuations) are ignored.
    mutating func addRawLine(_ line: Substring) {
        guard let colon = line.firstIndex(of: ":") else { return }
        let name = line[..<colon].trimmingASCIIWhitespace()
        let value = line[line.index(after: colon)...].trimmingASCIIWhitespace()
        guard !name.isEmpty else { return }
        fields.append(Field(name: String(name), value: String(value)))
    }
}

extension StringProtocol {
    func caseInsensitiveEquals(_ other: some StringProtocol) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        return zip(utf8, other.utf8).allSatisfy { lowerASCII($0) == lowerASCII($1) }
    }

    /// Drops spaces, tabs, CR and LF at both ends. Works on Unicode scalars, because "\r\n"
    /// is a single `Character` and would slip past a per-character check.
    func trimmingASCIIWhitespace() -> Substring {
        let s = Substring(self)
        let isSpace: (Unicode.Scalar) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        let scalars = s.unicodeScalars
        guard let first = scalars.firstIndex(where: { !isSpace($0) }),
            let last = scalars.lastIndex(where: { !isSpace($0) })
        else { return "" }
        return Substring(scalars[first...last])
    }
}

private func lowerASCII(_ byte: UInt8) -> UInt8 {
    (byte >= 65 && byte <= 90) ? byte + 32 : byte
}
