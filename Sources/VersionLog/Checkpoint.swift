public import ChunkStore

/// A transparency-log checkpoint (c2sp.org/tlog-checkpoint): the note text that a log signs.
///
/// ```
/// <origin>
/// <tree size, decimal, no leading zero>
/// <root hash, base64>
/// [extension lines, each non-empty]
/// ```
public struct Checkpoint: Hashable, Sendable {
    /// Longest origin accepted, in bytes.
    public static let maximumOriginLength = 256

    /// The log's origin line (for harp, the log key's name).
    public var origin: String
    /// The number of leaves.
    public var size: UInt64
    /// The RFC 6962 root of the first `size` leaves.
    public var rootHash: Hash256
    /// Opaque extension lines (harp writes none).
    public var extensions: [String]

    /// A checkpoint from its parts.
    public init(origin: String, size: UInt64, rootHash: Hash256, extensions: [String] = []) {
        self.origin = origin
        self.size = size
        self.rootHash = rootHash
        self.extensions = extensions
    }

    /// The note text, ending in a newline.
    public var text: String {
        ([origin, String(size), Base64.encode(rootHash.bytes)] + extensions).map { $0 + "\n" }.joined()
    }

    /// Parses the text of a checkpoint note.
    public init(text: String) throws(NoteError) {
        guard text.utf8.count <= SignedNote.maximumSize else {
            throw .tooLarge(size: text.utf8.count, limit: SignedNote.maximumSize)
        }
        guard text.hasSuffix("\n") else { throw .malformed("checkpoint text ends with a newline") }
        let lines = text.dropLast().split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count >= 3 else { throw .malformed("a checkpoint has an origin, a size and a root hash") }
        guard !lines.contains(where: \.isEmpty) else { throw .malformed("checkpoint lines are non-empty") }
        guard lines[0].utf8.count <= Self.maximumOriginLength else { throw .malformed("origin over 256 bytes") }
        let digits = lines[1].utf8
        guard digits.allSatisfy({ (0x30...0x39).contains($0) }), digits.count <= 20,
            digits.first != 0x30 || digits.count == 1, let size = UInt64(lines[1])
        else { throw .malformed("the tree size is a decimal number without leading zeroes") }
        guard let raw = Base64.decode(String(lines[2])), let root = Hash256(bytes: raw) else {
            throw .malformed("the root hash is the base64 of 32 bytes")
        }
        self.init(origin: String(lines[0]), size: size, rootHash: root, extensions: lines.dropFirst(3).map(String.init))
    }

    /// The checkpoint signed by the log key (`ed25519` type; its name should be the origin).
    public func signed(by key: NoteSigningKey) -> SignedNote {
        SignedNote(text: text, signatures: [SignedNote.sign(text: text, key: key)])
    }
}
