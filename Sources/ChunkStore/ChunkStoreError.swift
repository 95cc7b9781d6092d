import Glibc

/// Everything that can go wrong in the chunk store, in terms a person can act on.
public enum ChunkStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Chunking parameters that cannot be used.
    case invalidParameters(String)
    /// A file could not be opened, read, written or renamed; `errno` names the cause.
    case io(path: String, operation: String, errno: Int32)
    /// The disk is full (ENOSPC) or over quota (EDQUOT); nothing verified was lost.
    case diskFull(path: String)
    /// A file changed since it was indexed (size, mtime or inode differ): it must be re-indexed before serving.
    case stale(path: String)
    /// No indexed file or download holds this chunk.
    case chunkNotFound(Hash256)
    /// Bytes offered for a chunk do not hash to the chunk's hash.
    case chunkMismatch(index: Int, expected: Hash256, actual: Hash256)
    /// A chunk index outside the manifest.
    case chunkIndexOutOfRange(Int, count: Int)
    /// A manifest whose chunks do not produce the expected content root, or that is malformed.
    case manifestMismatch(String)
    /// The finished file does not verify against the content root; it was not renamed into place.
    case rootMismatch(expected: Hash256, actual: Hash256)
    /// A download cannot finish because chunks are missing.
    case incomplete(missing: Int)
    /// The SQLite index failed.
    case database(String)

    public var description: String {
        switch self {
        case .invalidParameters(let why): "invalid chunking parameters: \(why)"
        case .io(let path, let op, let code): "\(op) \(path): \(ChunkStoreError.describe(errno: code))"
        case .diskFull(let path): "disk full while writing \(path); the partial download is kept and can resume"
        case .stale(let path): "\(path) changed since it was indexed; it will be re-indexed before it is served"
        case .chunkNotFound(let hash): "no local copy of chunk \(hash.hex.prefix(16))"
        case .chunkMismatch(let index, let expected, let actual):
            "chunk \(index) does not match its hash (expected \(expected.hex.prefix(16)), got \(actual.hex.prefix(16)))"
        case .chunkIndexOutOfRange(let index, let count): "chunk index \(index) outside 0..<\(count)"
        case .manifestMismatch(let why): "manifest rejected: \(why)"
        case .rootMismatch(let expected, let actual):
            "content root mismatch (expected \(expected.hex.prefix(16)), got \(actual.hex.prefix(16))); file not renamed"
        case .incomplete(let missing): "download incomplete: \(missing) chunks missing"
        case .database(let why): "chunk index database error: \(why)"
        }
    }

    static func describe(errno code: Int32) -> String {
        guard let text = strerror(code) else { return "error \(code)" }
        return String(cString: text)
    }
}
