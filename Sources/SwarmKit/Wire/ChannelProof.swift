internal import CSodium

/// The proofs of `attach` and `attached` (docs/protocol.md §5.4): that the sender holds the key K of the swarm it
/// names, bound to this connection.
///
/// `proof = HMAC-SHA256(K, "harp/v2/channel" || role || h || u16 channel || S)` with h the connection's Noise
/// handshake hash (unique to the connection, known to both ends only), role 1 for `attach` and 2 for `attached`. A
/// proof cannot be replayed on another connection (another h), for another channel or swarm, or as the other role; a
/// peer without K cannot make one. S is not secret (the preamble and the signaling server see it), K is.
public enum ChannelProof {
    /// Whose proof: the side asking for the channel, or the side accepting it.
    public enum Role: UInt8, Sendable {
        case attach = 1
        case attached = 2
    }

    static let label = Array("harp/v2/channel".utf8)

    /// The proof of `role` for `channel` carrying swarm `swarmID` with key `swarmKey` on the connection whose
    /// handshake hash is `handshakeHash`.
    public static func make(
        _ role: Role, swarmKey: SecureBytes, handshakeHash: [UInt8], channel: UInt16, swarmID: [UInt8]
    ) -> [UInt8] {
        precondition(swarmID.count == 32, "a swarm id is 32 bytes")
        var message = label
        message.append(role.rawValue)
        message += handshakeHash
        message.append(UInt8(channel >> 8))
        message.append(UInt8(channel & 0xFF))
        message += swarmID
        var out = [UInt8](repeating: 0, count: NoiseHash.hashLength)
        swarmKey.withUnsafeBytes { key in
            message.withUnsafeBytes { bytes in
                out.withUnsafeMutableBytes { NoiseHash.hmac(key: key, [bytes], into: $0) }
            }
        }
        return out
    }

    /// Whether `proof` is the proof of `role` (compared in constant time).
    public static func verify(
        _ proof: [UInt8], _ role: Role, swarmKey: SecureBytes, handshakeHash: [UInt8], channel: UInt16,
        swarmID: [UInt8]
    ) -> Bool {
        guard proof.count == NoiseHash.hashLength, swarmID.count == 32 else { return false }
        let expected = make(role, swarmKey: swarmKey, handshakeHash: handshakeHash, channel: channel, swarmID: swarmID)
        return proof.withUnsafeBytes { a in
            expected.withUnsafeBytes { b in sodium_memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 }
        }
    }
}
