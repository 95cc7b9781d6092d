/// One signature line of a signed note: `— <key name> base64(key ID || signature)`.
public struct NoteSignature: Hashable, Sendable {
    /// The key name.
    public var name: String
    /// The first four bytes of the decoded signature, big-endian.
    public var keyID: UInt32
    /// The bytes after the key ID (64 for Ed25519, 72 for a cosignature/v1).
    public var signature: [UInt8]

    /// A signature line's parts.
    public init(name: String, keyID: UInt32, signature: [UInt8]) {
        self.name = name
        self.keyID = keyID
        self.signature = signature
    }

    /// The line, with its final newline.
    public var line: String {
        let id: [UInt8] = [
            UInt8(keyID >> 24), UInt8((keyID >> 16) & 0xff), UInt8((keyID >> 8) & 0xff), UInt8(keyID & 0xff),
        ]
        return "\u{2014} \(name) \(Base64.encode(id + signature))\n"
    }

    /// True when the line names `key` (same name and key ID): then it must verify, as the spec says.
    public func names(_ key: NoteVerifierKey) -> Bool { name == key.name && keyID == key.keyID }

    /// Parses one line without its newline.
    static func parse(line: Substring) throws(NoteError) -> NoteSignature {
        let prefix = "\u{2014} "
        guard line.hasPrefix(prefix) else { throw .malformed("a signature line starts with an em dash and a space") }
        let rest = line.dropFirst(prefix.count)
        let parts = rest.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw .malformed("a signature line is '— name base64'") }
        let name = String(parts[0])
        guard NoteVerifierKey.isValidName(name) else { throw .malformed("bad key name in a signature line") }
        guard let raw = Base64.decode(String(parts[1])), raw.count >= 5 else {
            throw .malformed("a signature is the base64 of a key ID and at least one byte")
        }
        let id = raw.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        return NoteSignature(name: name, keyID: id, signature: Array(raw.dropFirst(4)))
    }
}

/// A C2SP signed note (c2sp.org/signed-note): a text ending in a newline, a blank line, and signature lines.
///
/// Parsing checks the spec's rules (valid UTF-8, no control character other than newline, the text separated from
/// the signatures by the last blank line, at least one signature) and two limits checked before anything else:
/// `maximumSize` bytes (64 KiB) and `maximumSignatures` lines (64; the spec asks for at least 16).
public struct SignedNote: Hashable, Sendable {
    /// Default limit on a note's size in bytes.
    public static let maximumSize = 64 * 1024
    /// Default limit on the number of signature lines.
    public static let maximumSignatures = 64

    /// The signed text, ending in a newline.
    public var text: String
    /// The signature lines, in order.
    public var signatures: [NoteSignature]

    /// A note from its parts.
    public init(text: String, signatures: [NoteSignature]) {
        self.text = text
        self.signatures = signatures
    }

    /// Parses a whole note.
    public init(
        parsing note: String, maximumSize: Int = SignedNote.maximumSize,
        maximumSignatures: Int = SignedNote.maximumSignatures
    ) throws(NoteError) {
        let utf8 = Array(note.utf8)
        guard utf8.count <= maximumSize else { throw .tooLarge(size: utf8.count, limit: maximumSize) }
        guard !utf8.contains(where: { $0 < 0x20 && $0 != 0x0a }) else {
            throw .malformed("a note holds no control character other than newline")
        }
        guard utf8.last == 0x0a else { throw .malformed("a note ends with a newline") }
        // The text is separated from the signatures by the last empty line.
        guard let blank = utf8.indices.dropLast().last(where: { utf8[$0] == 0x0a && utf8[$0 + 1] == 0x0a }) else {
            throw .malformed("no blank line before the signatures")
        }
        guard blank + 2 < utf8.count else { throw .malformed("a note has at least one signature") }
        let text = String(decoding: utf8[...blank], as: UTF8.self)
        let block = utf8[(blank + 2)..<(utf8.count - 1)]
        let lines = block.split(separator: 0x0a, omittingEmptySubsequences: false)
        guard lines.count <= maximumSignatures else {
            throw .tooManyLines(count: lines.count, limit: maximumSignatures)
        }
        var signatures: [NoteSignature] = []
        for line in lines {
            signatures.append(try NoteSignature.parse(line: Substring(String(decoding: line, as: UTF8.self))))
        }
        guard !text.isEmpty else { throw .malformed("the note text is empty") }
        self.init(text: text, signatures: signatures)
    }

    /// The note: text, blank line, signature lines.
    public var formatted: String { text + "\n" + signatures.map(\.line).joined() }

    /// The note with `extra` signature lines added after its own (a line already present is not repeated).
    public func adding(_ extra: [NoteSignature]) -> SignedNote {
        var copy = self
        for signature in extra where !copy.signatures.contains(signature) { copy.signatures.append(signature) }
        return copy
    }

    /// The Ed25519 (`0x01`) signature by `key` of the text.
    public static func sign(text: String, key: NoteSigningKey) -> NoteSignature {
        NoteSignature(name: key.verifierKey.name, keyID: key.verifierKey.keyID, signature: key.sign(Array(text.utf8)))
    }

    /// The keys among `keys` (Ed25519 type) whose signature lines are present and verify.
    ///
    /// Lines of unknown keys (name or key ID different) are ignored; a line that names a known key and does not
    /// verify rejects the whole note, as the spec recommends. An empty result means no known key signed.
    public func verifiedSigners(among keys: [NoteVerifierKey]) throws(NoteError) -> [NoteVerifierKey] {
        var verified: [NoteVerifierKey] = []
        let message = Array(text.utf8)
        for signature in signatures {
            for key in keys where key.type == .ed25519 && signature.names(key) {
                guard key.isValidSignature(signature.signature, for: message) else {
                    throw .malformed("the signature of \(key.name) does not verify")
                }
                if !verified.contains(key) { verified.append(key) }
            }
        }
        return verified
    }
}
