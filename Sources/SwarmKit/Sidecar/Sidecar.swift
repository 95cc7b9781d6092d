public import ChunkStore
import Crypto
import Foundation

/// The small signed file that tells readers of a Nextcloud folder which content root a file version has.
///
/// Written by a peer with write access into `.harp/<fileid>.harp` next to the file (or `.harp/pending-<name>.harp`
/// while an upload is still running), it carries what a reader needs to join the swarm: the content root R (from which
/// the swarm key is derived) and what the version looked like on the server (fileid, etag, size, mtime), signed by the
/// writer's device key, and the version's random swarm salt σ (from which, with R, the swarm key is derived: readers of
/// the sidecar can join, whoever sees only the swarm id cannot confirm a guess of the content). The signature names the
/// writer; it does not make the claim true, which is why a fetcher compares samples of the server's own bytes before
/// renaming a file into place, and why a sidecar is published only from bytes established from the server
/// (docs/threat-model.md).
public struct Sidecar: Codable, Hashable, Sendable {
    public static let format = "harp-sidecar/2"
    /// Formats of older harp releases: recognised, and treated as no sidecar (docs/protocol.md §2).
    public static let outdatedFormats: Set<String> = ["harp-sidecar/1"]
    /// Bytes of the swarm salt σ.
    public static let saltSize = 32
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
    /// The swarm salt σ (32 random bytes, base64), chosen by whoever first published a sidecar for this version and
    /// kept by every rewrite of it (a pending sidecar's σ survives into the final one).
    public var salt: String
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
            "harp/v2/sidecar",
            "format=\(format)",
            "fileid=\(fileid ?? "")",
            "etag=\(etag ?? "")",
            "name=\(name)",
            "size=\(size)",
            "mtime=\(mtime)",
            "chunking=\(chunking.minSize),\(chunking.avgSize),\(chunking.maxSize),\(chunking.normalization),\(chunking.gear)",
            "root=\(root.hex)",
            "salt=\(salt)",
            "pending=\(pending)",
            "writer=\(writer)",
        ]
        return Array((lines.joined(separator: "\n") + "\n").utf8)
    }

    /// Creates and signs a sidecar. `salt` is σ (`Sidecar.randomSalt()` for a version that has no sidecar yet, else
    /// the σ of the sidecar it rewrites); `sign` signs bytes with the writer's device key, `writerKey` is its public
    /// half.
    public init(
        fileid: String?, etag: String?, name: String, size: Int64, mtime: Int64, chunking: ChunkingParameters,
        root: Hash256, salt: [UInt8], pending: Bool, writerKey: [UInt8], sign: ([UInt8]) throws -> [UInt8]
    ) rethrows {
        precondition(salt.count == Sidecar.saltSize, "a swarm salt is 32 bytes")
        self.fileid = fileid
        self.etag = etag
        self.name = name
        self.size = size
        self.mtime = mtime
        self.chunking = chunking
        self.root = root
        self.salt = Data(salt).base64EncodedString()
        self.pending = pending
        self.writer = Data(writerKey).base64EncodedString()
        self.signature = ""
        self.signature = Data(try sign(signedBytes)).base64EncodedString()
    }

    /// Parses and checks a sidecar: the format, the field limits, and the writer's signature.
    public init(json: [UInt8]) throws(SidecarError) {
        guard json.count <= 16 * 1024 else { throw .malformed("larger than 16 KiB") }
        struct Header: Decodable { var format: String }
        guard let header = try? JSONDecoder().decode(Header.self, from: Data(json)) else {
            throw .malformed("not a sidecar")
        }
        if Sidecar.outdatedFormats.contains(header.format) { throw .outdated(header.format) }
        guard header.format == Sidecar.format else { throw .malformed("unknown format \(header.format)") }
        let decoded: Sidecar
        do {
            decoded = try JSONDecoder().decode(Sidecar.self, from: Data(json))
        } catch {
            throw .malformed("not a sidecar")
        }
        guard decoded.saltBytes.count == Sidecar.saltSize else { throw .malformed("the swarm salt is not 32 bytes") }
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

    /// σ's bytes (32 for every sidecar that parsed).
    public var saltBytes: [UInt8] { Data(base64Encoded: salt).map(Array.init) ?? [] }

    /// The keys of this version's swarm: K and S from R and σ.
    public var swarmKeys: SwarmKeys { SwarmKeys(contentRoot: root.bytes, salt: saltBytes) }

    /// A fresh σ for a version that has no sidecar yet.
    public static func randomSalt() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<saltSize).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }
}

/// Why a sidecar was not used.
public enum SidecarError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(String)
    case badSignature
    /// A sidecar of an older harp (format `harp-sidecar/1`, without σ): ignored, and replaced by a writer who has
    /// the server's bytes.
    case outdated(String)

    public var description: String {
        switch self {
        case .malformed(let why): "sidecar rejected: \(why)"
        case .badSignature: "sidecar rejected: its signature does not verify"
        case .outdated(let format): "sidecar ignored: \(format) is the format of an older harp (no swarm salt)"
        }
    }
}
