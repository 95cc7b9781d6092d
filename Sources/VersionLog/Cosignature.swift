/// Timestamped witness cosignatures (c2sp.org/tlog-cosignature, `cosignature/v1`, Ed25519).
///
/// The signature line carries base64(key ID || u64 big-endian timestamp || 64-byte Ed25519 signature), the key ID
/// computed with type byte `0x04`, and the signed message is `cosignature/v1\ntime <T>\n` followed by the whole
/// checkpoint text.
public enum Cosignature {
    /// The message a cosigner signs for `checkpointText` at `time`.
    public static func message(checkpointText: String, time: UInt64) -> [UInt8] {
        Array("cosignature/v1\ntime \(time)\n\(checkpointText)".utf8)
    }

    /// A cosignature by `key` (which must be of type `cosignatureV1`) at `time` (at most 2^63 - 1).
    public static func sign(checkpointText: String, time: UInt64, key: NoteSigningKey) -> NoteSignature {
        precondition(key.verifierKey.type == .cosignatureV1, "a cosignature needs a cosignature/v1 key")
        precondition(time <= UInt64(Int64.max), "a cosignature time is at most 2^63 - 1")
        let signature = key.sign(message(checkpointText: checkpointText, time: time))
        var stamp: [UInt8] = []
        for shift in stride(from: 56, through: 0, by: -8) { stamp.append(UInt8((time >> UInt64(shift)) & 0xff)) }
        return NoteSignature(name: key.verifierKey.name, keyID: key.verifierKey.keyID, signature: stamp + signature)
    }

    /// The timestamp a cosignature line carries; nil unless it is 72 bytes with a timestamp below 2^63.
    public static func timestamp(of signature: NoteSignature) -> UInt64? {
        guard signature.signature.count == 72 else { return nil }
        let time = signature.signature.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return time <= UInt64(Int64.max) ? time : nil
    }

    /// The timestamp when `signature` is `key`'s valid cosignature of `checkpointText`, else nil.
    public static func verify(_ signature: NoteSignature, checkpointText: String, key: NoteVerifierKey) -> UInt64? {
        guard key.type == .cosignatureV1, signature.names(key), let time = timestamp(of: signature) else { return nil }
        let message = message(checkpointText: checkpointText, time: time)
        return key.isValidSignature(Array(signature.signature.dropFirst(8)), for: message) ? time : nil
    }
}
