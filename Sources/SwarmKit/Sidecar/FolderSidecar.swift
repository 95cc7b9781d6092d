public import ChunkStore
import Crypto
import Foundation

/// One swarm for the small files of a folder (docs/protocol.md §2.4): the signed list of the files it holds, with each
/// file's version (fileid, etag, size, mtime) and content root, and the content root of the *bundle*, whose manifest is
/// the files' manifests one after the other.
///
/// A file of 256 KiB or less costs a fetcher one request to the server whatever a swarm gives it (the comparison with
/// the server would read it whole), so per-file swarms never carried them. Bundled, they are one swarm, one join and
/// one manifest; the fetcher compares samples of the whole bundle with the server, as it does for one large file.
///
/// Written by a device with write access into `.harp/folder.harp` of the folder it describes, it lists every bundled
/// file below that folder by its relative path. Entries are checked one by one against the fetcher's own listing: a file
/// whose etag moved since is not taken from the bundle.
public struct FolderSidecar: Codable, Hashable, Sendable {
    public static let format = "harp-folder/1"
    /// The name of the folder sidecar inside `.harp/`.
    public static let fileName = "folder.harp"
    /// The largest file a bundle holds: the files a comparison with the server would read whole.
    public static let maxFileSize: Int64 = 256 * 1024
    /// Limits on what a reader accepts.
    public static let maxFiles = 100_000
    public static let maxEncodedSize = 32 << 20
    static let maxPathBytes = 4096
    static let maxTagBytes = 256

    /// One bundled file.
    public struct Entry: Codable, Hashable, Sendable {
        /// The path relative to the described folder, components joined by `/`.
        public var path: String
        public var fileid: String
        public var etag: String
        public var size: Int64
        public var mtime: Int64
        /// The file's own content root.
        public var root: Hash256

        public init(path: String, fileid: String, etag: String, size: Int64, mtime: Int64, root: Hash256) {
            self.path = path
            self.fileid = fileid
            self.etag = etag
            self.size = size
            self.mtime = mtime
            self.root = root
        }
    }

    public var format: String = FolderSidecar.format
    public var chunking: ChunkingParameters
    /// The bundle's content root: the RFC 6962 root over every file's chunks, in entry order.
    public var root: Hash256
    /// The swarm salt σ (base64 of 32 bytes), as for a file sidecar.
    public var salt: String
    public var files: [Entry]
    /// The writer's Ed25519 device key (base64).
    public var writer: String
    /// Ed25519 signature (base64) over `signedBytes`.
    public var signature: String

    /// The bytes the writer signs: a domain separator line, then every field as a length-prefixed UTF-8 string (u32
    /// big-endian length), so no path can be read as another field.
    public var signedBytes: [UInt8] {
        var bytes = Array("harp/v1/folder-sidecar\n".utf8)
        func field(_ text: String) {
            let utf8 = Array(text.utf8)
            withUnsafeBytes(of: UInt32(utf8.count).bigEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: utf8)
        }
        field(format)
        field(
            "\(chunking.minSize),\(chunking.avgSize),\(chunking.maxSize),\(chunking.normalization),\(chunking.gear)")
        field(root.hex)
        field(salt)
        field(writer)
        field("\(files.count)")
        for file in files {
            field(file.path)
            field(file.fileid)
            field(file.etag)
            field("\(file.size)")
            field("\(file.mtime)")
            field(file.root.hex)
        }
        return bytes
    }

    /// Creates and signs a folder sidecar for `files`, whose bundle root is `root` (`FolderSidecar.bundle`).
    public init(
        files: [Entry], chunking: ChunkingParameters, root: Hash256, salt: [UInt8], writerKey: [UInt8],
        sign: ([UInt8]) throws -> [UInt8]
    ) rethrows {
        precondition(salt.count == Sidecar.saltSize, "a swarm salt is 32 bytes")
        self.files = files
        self.chunking = chunking
        self.root = root
        self.salt = Data(salt).base64EncodedString()
        self.writer = Data(writerKey).base64EncodedString()
        self.signature = ""
        self.signature = Data(try sign(signedBytes)).base64EncodedString()
    }

    /// Parses and checks a folder sidecar: size, format, every entry's limits and path, and the signature.
    public init(json: [UInt8]) throws(SidecarError) {
        guard json.count <= Self.maxEncodedSize else { throw .malformed("larger than 32 MiB") }
        let decoded: FolderSidecar
        do {
            decoded = try JSONDecoder().decode(FolderSidecar.self, from: Data(json))
        } catch {
            throw .malformed("not a folder sidecar")
        }
        guard decoded.format == Self.format else { throw .malformed("unknown format \(decoded.format)") }
        guard decoded.saltBytes.count == Sidecar.saltSize else { throw .malformed("the swarm salt is not 32 bytes") }
        guard !decoded.files.isEmpty, decoded.files.count <= Self.maxFiles else {
            throw .malformed("\(decoded.files.count) files (1...\(Self.maxFiles))")
        }
        do { try decoded.chunking.validate() } catch { throw .malformed(error.description) }
        var seen = Set<String>()
        for file in decoded.files {
            guard Self.isAcceptablePath(file.path), seen.insert(file.path).inserted else {
                throw .malformed("bad or repeated path \(file.path.prefix(64).debugDescription)")
            }
            guard file.size > 0, file.size <= Self.maxFileSize else {
                throw .malformed("\(file.path): size \(file.size) outside 1...\(Self.maxFileSize)")
            }
            guard !file.fileid.isEmpty, file.fileid.utf8.count <= Self.maxTagBytes, !file.etag.isEmpty,
                file.etag.utf8.count <= Self.maxTagBytes
            else { throw .malformed("\(file.path): bad fileid or etag") }
        }
        guard let key = Data(base64Encoded: decoded.writer), let signature = Data(base64Encoded: decoded.signature),
            let publicKey = try? Curve25519.Signing.PublicKey(rawRepresentation: key),
            publicKey.isValidSignature(signature, for: Data(decoded.signedBytes))
        else { throw .badSignature }
        self = decoded
    }

    /// A relative path a bundle may name: non-empty components, none `.`, `..` or `.harp`, no control character, no
    /// leading or trailing `/`, at most 4 KiB.
    public static func isAcceptablePath(_ path: String) -> Bool {
        guard !path.isEmpty, path.utf8.count <= maxPathBytes else { return false }
        guard !path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return false }
        let components = path.split(separator: "/", omittingEmptySubsequences: false)
        return components.allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." && $0 != Sidecar.folderName }
    }

    /// The JSON form, with sorted keys.
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).map { Array($0) } ?? []
    }

    public var saltBytes: [UInt8] { Data(base64Encoded: salt).map(Array.init) ?? [] }
    public var writerKey: [UInt8] { Data(base64Encoded: writer).map(Array.init) ?? [] }

    /// The keys of the bundle's swarm: K and S from the bundle root and σ.
    public var swarmKeys: SwarmKeys { SwarmKeys(contentRoot: root.bytes, salt: saltBytes) }

    /// The total size of the bundle.
    public var size: Int64 { files.reduce(0) { $0 + $1.size } }

    /// The bundle's manifest: the files' manifests one after the other (they must share the chunking parameters).
    public static func bundle(_ manifests: [Manifest]) throws(ChunkStoreError) -> Manifest {
        guard let parameters = manifests.first?.parameters else {
            throw .manifestMismatch("a bundle needs at least one file")
        }
        guard manifests.allSatisfy({ $0.parameters == parameters }) else {
            throw .manifestMismatch("the bundled files were chunked with different parameters")
        }
        return try Manifest(parameters: parameters, chunks: manifests.flatMap(\.chunks))
    }

    /// Where each file lies in the bundle `manifest` (already verified against `root`), as chunk index ranges in entry
    /// order. Throws unless the chunks split exactly at the files' sizes and each file's chunks hash to its own root:
    /// the writer's list and the bundle must agree before a byte is written.
    public func layout(of manifest: Manifest) throws(ChunkStoreError) -> [Range<Int>] {
        guard manifest.parameters == chunking else { throw .manifestMismatch("the bundle's chunking differs") }
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(files.count)
        var next = 0
        for file in files {
            let start = next
            var bytes: Int64 = 0
            while bytes < file.size, next < manifest.chunks.count {
                bytes += Int64(manifest.chunks[next].length)
                next += 1
            }
            guard bytes == file.size else {
                throw .manifestMismatch("the bundle's chunks do not end where \(file.path) does")
            }
            let root = Merkle.root(leafHashes: manifest.chunks[start..<next].lazy.map(\.leafHash))
            guard root == file.root else {
                throw .manifestMismatch("the bundle's chunks of \(file.path) are not its content root")
            }
            ranges.append(start..<next)
        }
        guard next == manifest.chunks.count else { throw .manifestMismatch("the bundle has chunks of no file") }
        return ranges
    }
}
