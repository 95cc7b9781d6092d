public import ChunkStore
import Crypto
import Foundation

/// The small signed file that tells readers of a Nextcloud folder which content root a file version has.
///
/// Written by a peer with write access into `.harp/<fileid>.harp` next to the file (or `.harp/pending-<name>.harp`
/// while an upload is still running), it carries what a reader needs to join the swarm: the content root R (from which
/// the swarm key is derived) and what the version looked like on the server (fileid, etag, size, mtime), signed by the
/// writer's device key. The signature names the writer; it does not make the claim true, which is why a fetcher checks
/// a chunk against the server's own bytes before renaming a file into place.
public struct Sidecar: Codable, Hashable, Sendable {
    public static let format = "harp-sidecar/1"
    public static let folderName = ".harp"

    public var format: String = Sidecar.format
    /// Nextcloud's fileid, or nil while the upload is pending.
    public var fileid: String?
    /// The etag the writer saw, or nil while pending.
    public var etag: String?
    /// The file's name, for pending sidecars and for people reading the folder.
    public var name: String
    public var size: Int64
    /// Modification time in seconds since 1970, as Nextcloud reports it.
    public var mtime: Int64
    public var chunking: ChunkingParameters
    /// The content root R.
    public var root: Hash256
    /// True while the upload that this sidecar announces is still running.
    public var pending: Bool
    /// The writer's Ed25519 device key (32 bytes, base64).
    public var writer: String
    /// Ed25519 signature (base64) over `signedBytes`.
    public var signature: String

    /// The file name of this sidecar inside `.harp/`.
    public var fileName: String {
        if let fileid, !pending { return "\(fileid).harp" }
        return "pending-\(name).harp"
    }

    /// The exact bytes the writer signs: a domain separator, then one `key=value` line per field in a fixed order.
    public var signedBytes: [UInt8] {
        let lines = [
            "harp/v1/sidecar",
            "format=\(format)",
            "fileid=\(fileid ?? "")",
            "etag=\(etag ?? "")",
            "name=\(name)",
            "size=\(size)",
            "mtime=\(mtime)",
            "chunking=\(chunking.minSize),\(chunking.avgSize),\(chunking.maxSize),\(chunking.normalization),\(chunking.gear)",
            "root=\(root.hex)",
            "pending=\(pending)",
            "writer=\(writer)",
        ]
        return Array((lines.joined(separator: "\n") + "\n").utf8)
    }

    /// Creates and signs a sidecar. `sign` signs bytes with the writer's device key; `writerKey` is its public half.
    public init(
        fileid: String?, etag: String?, name: String, size: Int64, mtime: Int64, chunking: ChunkingParameters,
        root: Hash256, pending: Bool, writerKey: [UInt8], sign: ([UInt8]) throws -> [UInt8]
    ) rethrows {
        self.fileid = fileid
        self.etag = etag
        self.name = name
        self.size = size
        self.mtime = mtime
        self.chunking = chunking
        self.root = root
        self.pending = pending
        self.writer = Data(writerKey).base64EncodedString()
        self.signature = ""
        self.signature = Data(try sign(signedBytes)).base64EncodedString()
    }

    /// Parses and checks a sidecar: the format, the field limits, and the writer's signature.
    public init(json: [UInt8]) throws(SidecarError) {
        guard json.count <= 16 * 1024 else { throw .malformed("larger than 16 KiB") }
        let decoded: Sidecar
        do {
            decoded = try JSONDecoder().decode(Sidecar.self, from: Data(json))
        } catch {
            throw .malformed("not a sidecar")
        }
        guard decoded.format == Sidecar.format else { throw .malformed("unknown format \(decoded.format)") }
        guard decoded.size >= 0, decoded.name.utf8.count <= 1024, !decoded.name.contains("/") else {
            throw .malformed("bad size or name")
        }
        guard decoded.pending || (decoded.fileid != nil && decoded.etag != nil) else {
            throw .malformed("a final sidecar needs a fileid and an etag")
        }
        do { try decoded.chunking.validate() } catch { throw .malformed(error.description) }
        guard let key = Data(base64Encoded: decoded.writer), let signature = Data(base64Encoded: decoded.signature),
            let publicKey = try? Curve25519.Signing.PublicKey(rawRepresentation: key),
            publicKey.isValidSignature(signature, for: Data(decoded.signedBytes))
        else { throw .badSignature }
        self = decoded
    }

    /// The JSON form, with sorted keys.
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).map { Array($0) } ?? []
    }

    /// The writer's device key bytes.
    public var writerKey: [UInt8] { Data(base64Encoded: writer).map(Array.init) ?? [] }
}

/// Why a sidecar was not used.
public enum SidecarError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(String)
    case badSignature

    public var description: String {
        switch self {
        case .malformed(let why): "sidecar rejected: \(why)"
        case .badSignature: "sidecar rejected: its signature does not verify"
        }
    }
}
