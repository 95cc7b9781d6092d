/// Binds a device key to a Nextcloud user (or ends that binding), attested by the log's key (docs/proofs.md §3).
///
/// A device key counts as the author of a version only when an `enroll` entry for that key and user stands earlier in
/// the log than the version and no `revoke` entry for them stands between the two. The log key signs
/// `"harp version-log enrollment v1" || 0x00 || action || device || user || time`; the 0x00 byte makes the message
/// impossible as signed-note text (which holds no control character), so this signature can never pass as a checkpoint.
public struct EnrollmentEntry: Hashable, Sendable {
    /// The attestation's context string.
    public static let signatureContext = "harp version-log enrollment v1"

    /// What the entry does.
    public enum Action: UInt8, Sendable, Hashable {
        /// From this leaf on, the device signs for the user.
        case enroll = 1
        /// From this leaf on, it does not (until a later `enroll`).
        case revoke = 2
    }

    public var action: Action
    public var device: DeviceKey
    /// The Nextcloud user the server learnt from Nextcloud itself (the owner of the enrollment share).
    public var user: String
    /// Unix seconds, not negative.
    public var time: Int64
    /// The log key's Ed25519 signature of `signedMessage`.
    public var attestation: [UInt8]

    /// An entry attested by `logKey` (the log's `ed25519` note key); refuses a user name over 256 bytes or with
    /// control characters, and a negative time.
    public static func attested(
        _ action: Action, device: DeviceKey, user: String, time: Int64, logKey: NoteSigningKey
    ) throws(LogEncodingError) -> EnrollmentEntry {
        try VersionEntry.checkText(user, field: "user")
        guard time >= 0 else { throw .outOfRange(field: "time") }
        var entry = EnrollmentEntry(action: action, device: device, user: user, time: time, attestation: [])
        entry.attestation = logKey.sign(entry.signedMessage)
        return entry
    }

    /// The bytes the log key signs.
    public var signedMessage: [UInt8] {
        var writer = ByteWriter()
        writer.raw(Array(Self.signatureContext.utf8) + [0])
        writeBody(to: &writer)
        return writer.bytes
    }

    /// True when `attestation` is `logKey`'s signature.
    public func isAttested(by logKey: NoteVerifierKey) -> Bool {
        logKey.isValidSignature(attestation, for: signedMessage)
    }

    private func writeBody(to writer: inout ByteWriter) {
        writer.u8(action.rawValue)
        writer.raw(device.bytes)
        writer.text(user)
        writer.u64(UInt64(bitPattern: time))
    }

    func write(to writer: inout ByteWriter) {
        precondition(user.utf8.count <= VersionEntry.maximumTextLength, "user name over the limit")
        precondition(attestation.count == 64, "an unattested enrollment cannot be serialised")
        writeBody(to: &writer)
        writer.raw(attestation)
    }

    static func read(from reader: inout ByteReader) throws(LogEncodingError) -> EnrollmentEntry {
        let rawAction = try reader.u8("action")
        guard let action = Action(rawValue: rawAction) else { throw .unknownValue(field: "action", value: rawAction) }
        guard let device = DeviceKey(bytes: try reader.raw("device", count: 32)) else {
            throw .truncated(field: "device")
        }
        let user = try reader.text("user", limit: VersionEntry.maximumTextLength)
        let time = try reader.u64("time")
        guard time <= UInt64(Int64.max) else { throw .outOfRange(field: "time") }
        return EnrollmentEntry(
            action: action, device: device, user: user, time: Int64(time),
            attestation: try reader.raw("attestation", count: 64))
    }
}
