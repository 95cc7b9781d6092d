public import ChunkStore
public import Crypto
import HarpBasics

/// What a version did to its file.
public enum VersionOperation: UInt8, Sendable, Hashable, CaseIterable {
    case create = 1
    case modify = 2
    case rename = 3
    case delete = 4
    case restore = 5
    /// A version written outside harp (web interface, desktop client), recorded by the device that met its etag.
    case observed = 6

    /// The lowercase name (`create`, `modify`, ...).
    public var name: String { String(describing: self) }
}

/// An author's Ed25519 public key (32 bytes): the device that signed a version.
public struct DeviceKey: Hashable, Sendable, CustomStringConvertible {
    /// The 32 bytes of the public key.
    public let bytes: [UInt8]

    /// Refuses anything but 32 bytes.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        self.bytes = bytes
    }

    /// The public half of a device's signing key.
    public init(_ key: Curve25519.Signing.PublicKey) { self.bytes = Array(key.rawRepresentation) }

    /// Lowercase hex.
    public var description: String { Hex.encode(bytes) }

    func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        guard signature.count == 64, let key = try? Curve25519.Signing.PublicKey(rawRepresentation: bytes) else {
            return false
        }
        return key.isValidSignature(signature, for: message)
    }
}

/// One version of a file lineage, signed by its author's device (docs/proofs.md §2).
///
/// `meta_n` is every field up to and including `time`; the chain hash is
/// `h_n = SHA3-256(serialize(meta_n) || h_{n-1})` with `h_0` = 32 zero bytes, and `previousHash` holds `h_{n-1}`.
/// The device signs `"harp version-log entry v1" || 0x00 || serialize(meta_n) || h_{n-1} || h_n`.
public struct VersionEntry: Hashable, Sendable {
    /// The signature's context string (followed by one 0x00 byte in the signed message).
    public static let signatureContext = "harp version-log entry v1"
    /// Longest etag and user name, in UTF-8 bytes.
    public static let maximumTextLength = 256

    /// `lineage(instance:fileID:)`: the file across renames.
    public var lineage: Hash256
    /// 1 for the first version, then +1 per version.
    public var version: UInt64
    public var operation: VersionOperation
    /// `commitment(contentRoot:)` of the version's content root R (never R: R is the swarm capability).
    public var contentCommitment: Hash256
    /// Bytes.
    public var size: UInt64
    /// The Nextcloud etag.
    public var etag: String
    public var authorDevice: DeviceKey
    /// The author's Nextcloud user.
    public var authorUser: String
    /// Unix seconds, not negative.
    public var time: Int64
    /// `h_{n-1}` (32 zero bytes for version 1).
    public var previousHash: Hash256
    /// `h_n`.
    public var chainHash: Hash256
    /// The author device's Ed25519 signature (64 bytes).
    public var signature: [UInt8]

    /// SHA-256("harp lineage v1" || 0x00 || len64 || instance || len64 || fileid): the lineage of a Nextcloud file.
    public static func lineage(instance: String, fileID: String) -> Hash256 {
        var writer = ByteWriter()
        writer.raw(Array("harp lineage v1".utf8) + [0])
        for part in [instance, fileID] {
            writer.u64(UInt64(part.utf8.count))
            writer.raw(part.utf8)
        }
        return Hash256.sha256(writer.bytes)
    }

    /// SHA-256("harp content commitment v1" || 0x00 || R): what the log stores instead of the content root R.
    public static func commitment(contentRoot: Hash256) -> Hash256 {
        Hash256.sha256(Array("harp content commitment v1".utf8) + [0] + contentRoot.bytes)
    }

    /// A new version signed by `device`; `previous` is the lineage's head (nil for version 1). Refuses an etag or a
    /// user over `maximumTextLength` bytes, text with control characters, and a negative time.
    public static func signed(
        lineage: Hash256, previous: VersionEntry?, operation: VersionOperation, contentRoot: Hash256, size: UInt64,
        etag: String, authorUser: String, time: Int64, device: Curve25519.Signing.PrivateKey
    ) throws(LogEncodingError) -> VersionEntry {
        try checkText(etag, field: "etag")
        try checkText(authorUser, field: "authorUser")
        guard time >= 0 else { throw .outOfRange(field: "time") }
        var entry = VersionEntry(
            lineage: lineage, version: (previous?.version ?? 0) + 1, operation: operation,
            contentCommitment: commitment(contentRoot: contentRoot), size: size, etag: etag,
            authorDevice: DeviceKey(device.publicKey), authorUser: authorUser, time: time,
            previousHash: previous?.chainHash ?? .zero, chainHash: .zero, signature: [])
        entry.seal(device: device)
        return entry
    }

    static func checkText(_ text: String, field: String) throws(LogEncodingError) {
        guard text.utf8.count <= maximumTextLength else {
            throw .fieldTooLong(field: field, length: text.utf8.count, limit: maximumTextLength)
        }
        guard Text.isPrintable(text) else { throw .invalidText(field: field) }
    }

    /// Recomputes `chainHash` from the fields and signs again (tests and the log's own tooling).
    public mutating func seal(device: Curve25519.Signing.PrivateKey) {
        chainHash = computedChainHash
        do {
            signature = Array(try device.signature(for: signedMessage))
        } catch {
            preconditionFailure("Ed25519 signing failed: \(error)")
        }
    }

    /// serialize(meta_n): lineage, version, operation, commitment, size, etag, device, user, time (docs/proofs.md §2).
    public var metaBytes: [UInt8] {
        var writer = ByteWriter()
        writer.hash(lineage)
        writer.u64(version)
        writer.u8(operation.rawValue)
        writer.hash(contentCommitment)
        writer.u64(size)
        writer.text(etag)
        writer.raw(authorDevice.bytes)
        writer.text(authorUser)
        writer.u64(UInt64(bitPattern: time))
        return writer.bytes
    }

    /// SHA3-256(serialize(meta_n) || previousHash).
    public var computedChainHash: Hash256 {
        var hasher = SHA3_256()
        hasher.update(data: metaBytes)
        hasher.update(data: previousHash.bytes)
        return Hash256(bytes: Array(hasher.finalize())) ?? .zero
    }

    /// The bytes the author signs.
    public var signedMessage: [UInt8] {
        Array(Self.signatureContext.utf8) + [0] + metaBytes + previousHash.bytes + chainHash.bytes
    }

    /// True when `signature` is the author device's signature of `signedMessage`.
    public var hasValidSignature: Bool { authorDevice.isValidSignature(signature, for: signedMessage) }

    func write(to writer: inout ByteWriter) {
        precondition(etag.utf8.count <= Self.maximumTextLength && authorUser.utf8.count <= Self.maximumTextLength)
        precondition(signature.count == 64, "an unsigned entry cannot be serialised")
        writer.raw(metaBytes)
        writer.hash(previousHash)
        writer.hash(chainHash)
        writer.raw(signature)
    }

    static func read(from reader: inout ByteReader) throws(LogEncodingError) -> VersionEntry {
        let lineage = try reader.hash("lineage")
        let version = try reader.u64("version")
        guard version >= 1 else { throw .outOfRange(field: "version") }
        let rawOperation = try reader.u8("operation")
        guard let operation = VersionOperation(rawValue: rawOperation) else {
            throw .unknownValue(field: "operation", value: rawOperation)
        }
        let commitment = try reader.hash("contentCommitment")
        let size = try reader.u64("size")
        let etag = try reader.text("etag", limit: maximumTextLength)
        guard let device = DeviceKey(bytes: try reader.raw("authorDevice", count: 32)) else {
            throw .truncated(field: "authorDevice")
        }
        let user = try reader.text("authorUser", limit: maximumTextLength)
        let time = try reader.u64("time")
        guard time <= UInt64(Int64.max) else { throw .outOfRange(field: "time") }
        return VersionEntry(
            lineage: lineage, version: version, operation: operation, contentCommitment: commitment, size: size,
            etag: etag, authorDevice: device, authorUser: user, time: Int64(time),
            previousHash: try reader.hash("previousHash"), chainHash: try reader.hash("chainHash"),
            signature: try reader.raw("signature", count: 64))
    }
}
