public import Crypto
public import Foundation
internal import HarpBasics

/// What a device writes into a file of its own Nextcloud home and shares read-only with the signaling server's
/// Nextcloud account to enroll (or revoke) its key (docs/proofs.md §3): the server's nonce, the action, the device
/// key, the user it claims, the Nextcloud instance, the log's origin and the time, signed by the device key.
///
/// The server believes none of it but the signature: the user must be the share's owner as Nextcloud reports it, the
/// instance the server's own, the origin its log's, the nonce one it issued and not used, the time within its skew.
/// The device key signs `"harp enrollment request v1" || 0x00 || action || nonce || device || user || instance ||
/// origin || time` (texts as in log entries: u16 length then UTF-8); the zero byte keeps the message apart from
/// every other signed message of harp.
public struct EnrollmentRequest: Hashable, Sendable {
    /// The signature's context string.
    public static let signatureContext = "harp enrollment request v1"
    /// The JSON document's format name.
    public static let format = "harp-enrollment/v1"
    /// The largest document accepted (the server reads no more than this from Nextcloud).
    public static let maximumDocumentSize = 4096
    /// The nonce's length in bytes.
    public static let nonceLength = 32

    public var action: EnrollmentEntry.Action
    public var nonce: [UInt8]
    public var device: DeviceKey
    public var user: String
    public var instance: String
    public var origin: String
    public var time: Int64
    public var signature: [UInt8]

    /// A request signed by `key`, whose public half is the device enrolled (or revoked).
    public static func signed(
        _ action: EnrollmentEntry.Action, nonce: [UInt8], user: String, instance: String, origin: String, time: Int64,
        key: Curve25519.Signing.PrivateKey
    ) throws -> EnrollmentRequest {
        var request = EnrollmentRequest(
            action: action, nonce: nonce, device: DeviceKey(key.publicKey), user: user, instance: instance,
            origin: origin, time: time, signature: [])
        try request.checkFields()
        request.signature = Array(try key.signature(for: request.signedMessage))
        return request
    }

    /// The bytes the device key signs.
    public var signedMessage: [UInt8] {
        var writer = ByteWriter()
        writer.raw(Array(Self.signatureContext.utf8) + [0])
        writer.u8(action.rawValue)
        writer.raw(nonce)
        writer.raw(device.bytes)
        writer.text(user)
        writer.text(instance)
        writer.text(origin)
        writer.u64(UInt64(bitPattern: time))
        return writer.bytes
    }

    /// True when `signature` is the device key's signature of `signedMessage`.
    public var hasValidSignature: Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: device.bytes) else { return false }
        return key.isValidSignature(signature, for: signedMessage)
    }

    private func checkFields() throws(LogEncodingError) {
        guard nonce.count == Self.nonceLength else { throw .outOfRange(field: "nonce") }
        try VersionEntry.checkText(user, field: "user")
        try VersionEntry.checkText(instance, field: "instance")
        try VersionEntry.checkText(origin, field: "origin")
        guard time >= 0 else { throw .outOfRange(field: "time") }
    }

    /// The JSON document (sorted keys, binary parts in hex and base64).
    public var json: Data {
        let object: [String: Any] = [
            "format": Self.format, "action": action == .enroll ? "enroll" : "revoke", "nonce": Hex.encode(nonce),
            "device": device.description, "user": user, "instance": instance, "origin": origin, "time": time,
            "signature": Data(signature).base64EncodedString(),
        ]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
    }

    /// Parses a document: refuses more than `maximumDocumentSize` bytes before parsing, an unknown format or action,
    /// fields of the wrong type or size. Does not check the signature (see `hasValidSignature`).
    public init(json data: Data) throws(EnrollmentRequestError) {
        guard data.count <= Self.maximumDocumentSize else {
            throw EnrollmentRequestError("over \(Self.maximumDocumentSize) bytes")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
            object["format"] as? String == Self.format
        else { throw EnrollmentRequestError("not a \(Self.format) document") }
        func text(_ key: String) throws(EnrollmentRequestError) -> String {
            guard let value = object[key] as? String else { throw EnrollmentRequestError("no \(key)") }
            return value
        }
        let action: EnrollmentEntry.Action
        switch try text("action") {
        case "enroll": action = .enroll
        case "revoke": action = .revoke
        default: throw EnrollmentRequestError("unknown action")
        }
        guard let nonce = Hex.decode(try text("nonce")), nonce.count == Self.nonceLength else {
            throw EnrollmentRequestError("the nonce is not \(Self.nonceLength) bytes of hex")
        }
        guard let deviceBytes = Hex.decode(try text("device")), let device = DeviceKey(bytes: deviceBytes) else {
            throw EnrollmentRequestError("the device is not 32 bytes of hex")
        }
        guard let time = (object["time"] as? NSNumber)?.int64Value, time >= 0 else {
            throw EnrollmentRequestError("bad time")
        }
        guard let signature = Data(base64Encoded: try text("signature")), signature.count == 64 else {
            throw EnrollmentRequestError("the signature is not 64 bytes of base64")
        }
        self.init(
            action: action, nonce: nonce, device: device, user: try text("user"), instance: try text("instance"),
            origin: try text("origin"), time: time, signature: Array(signature))
        do {
            try checkFields()
        } catch {
            throw EnrollmentRequestError("\(error)")
        }
    }

    public init(
        action: EnrollmentEntry.Action, nonce: [UInt8], device: DeviceKey, user: String, instance: String,
        origin: String, time: Int64, signature: [UInt8]
    ) {
        self.action = action
        self.nonce = nonce
        self.device = device
        self.user = user
        self.instance = instance
        self.origin = origin
        self.time = time
        self.signature = signature
    }
}

/// Why an enrollment document was refused.
public struct EnrollmentRequestError: Error, Equatable, Sendable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
