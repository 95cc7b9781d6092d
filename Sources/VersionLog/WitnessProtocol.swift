public import ChunkStore

/// The body of a tlog-witness `add-checkpoint` request (c2sp.org/tlog-witness):
///
/// ```
/// old <size>\n
/// <base64 consistency proof hash>\n   (zero to 63 lines)
/// \n
/// <signed checkpoint note>
/// ```
public struct AddCheckpointRequest: Hashable, Sendable {
    /// "The client MUST NOT send more than 63 consistency proof lines."
    public static let maximumProofLines = 63
    /// The largest body accepted: a note of `SignedNote.maximumSize` and 63 proof lines.
    public static let maximumBodySize = SignedNote.maximumSize + 64 * 46 + 32

    /// The size of the latest checkpoint the client believes the witness cosigned (0 for none).
    public var oldSize: UInt64
    /// The RFC 6962 consistency proof from `oldSize` to the checkpoint's size (empty when `oldSize` is 0).
    public var consistencyProof: [Hash256]
    /// The checkpoint, with the log's signature.
    public var checkpoint: SignedNote

    /// A request from its parts.
    public init(oldSize: UInt64, consistencyProof: [Hash256], checkpoint: SignedNote) {
        self.oldSize = oldSize
        self.consistencyProof = consistencyProof
        self.checkpoint = checkpoint
    }

    /// The request body.
    public var body: String {
        "old \(oldSize)\n" + consistencyProof.map { Base64.encode($0.bytes) + "\n" }.joined() + "\n"
            + checkpoint.formatted
    }

    /// Parses a request body; refuses more than `maximumBodySize` bytes or 63 proof lines before going further.
    public init(body: String) throws(NoteError) {
        let utf8 = body.utf8
        guard utf8.count <= Self.maximumBodySize else { throw .tooLarge(size: utf8.count, limit: Self.maximumBodySize) }
        var rest = Substring(body)
        func nextLine() throws(NoteError) -> Substring {
            guard let newline = rest.firstIndex(of: "\n") else { throw .malformed("a request line ends with newline") }
            defer { rest = rest[rest.index(after: newline)...] }
            return rest[..<newline]
        }
        let old = try nextLine()
        guard old.hasPrefix("old "), let size = Self.decimal(old.dropFirst(4)) else {
            throw .malformed("the first line is 'old <size>'")
        }
        var proof: [Hash256] = []
        while true {
            let line = try nextLine()
            if line.isEmpty { break }
            guard proof.count < Self.maximumProofLines else {
                throw .tooManyLines(count: proof.count + 1, limit: Self.maximumProofLines)
            }
            guard let raw = Base64.decode(String(line)), let hash = Hash256(bytes: raw) else {
                throw .malformed("a consistency proof line is the base64 of 32 bytes")
            }
            proof.append(hash)
        }
        self.init(oldSize: size, consistencyProof: proof, checkpoint: try SignedNote(parsing: String(rest)))
    }

    /// An ASCII decimal with no leading zero (unless it is `0`).
    static func decimal(_ text: Substring) -> UInt64? {
        let digits = text.utf8
        guard !digits.isEmpty, digits.count <= 20, digits.allSatisfy({ (0x30...0x39).contains($0) }),
            digits.first != 0x30 || digits.count == 1
        else { return nil }
        return UInt64(text)
    }
}

/// What a witness answers to `add-checkpoint`, as HTTP status, content type and body.
public enum AddCheckpointResponse: Hashable, Sendable {
    /// 200: one or more cosignature lines.
    case cosigned([NoteSignature])
    /// 409 with `text/x.tlog.size`: the size of the latest checkpoint this witness cosigned for the origin.
    case conflict(latestSize: UInt64)
    /// 400: old size above the checkpoint size, or a malformed body.
    case badRequest(String)
    /// 403: no signature of a trusted log key verifies.
    case forbidden
    /// 404: the origin is unknown to this witness.
    case unknownOrigin
    /// 422: the consistency proof does not verify.
    case inconsistent

    /// The HTTP status code the spec gives.
    public var statusCode: Int {
        switch self {
        case .cosigned: 200
        case .conflict: 409
        case .badRequest: 400
        case .forbidden: 403
        case .unknownOrigin: 404
        case .inconsistent: 422
        }
    }

    /// The `Content-Type` of the body (`text/x.tlog.size` for 409, plain text otherwise).
    public var contentType: String {
        if case .conflict = self { return "text/x.tlog.size" }
        return "text/plain; charset=utf-8"
    }

    /// The body: signature lines for 200, `<size>\n` for 409, a short reason otherwise.
    public var body: String {
        switch self {
        case .cosigned(let lines): lines.map(\.line).joined()
        case .conflict(let size): "\(size)\n"
        case .badRequest(let reason): reason + "\n"
        case .forbidden: "no trusted log signature verifies\n"
        case .unknownOrigin: "unknown log origin\n"
        case .inconsistent: "the consistency proof does not verify\n"
        }
    }

    /// Reads a witness's answer on the client (log) side; nil for a status or body this protocol does not define.
    public init?(statusCode: Int, body: String) {
        guard body.utf8.count <= SignedNote.maximumSize else { return nil }
        switch statusCode {
        case 200:
            guard let note = try? SignedNote(parsing: "x\n\n" + body) else { return nil }
            self = .cosigned(note.signatures)
        case 409:
            guard body.hasSuffix("\n"), let size = AddCheckpointRequest.decimal(body.dropLast()) else { return nil }
            self = .conflict(latestSize: size)
        case 400: self = .badRequest(String(body.prefix(200)))
        case 403: self = .forbidden
        case 404: self = .unknownOrigin
        case 422: self = .inconsistent
        default: return nil
        }
    }
}
