/// What went wrong in a Noise handshake or on an encrypted transport.
///
/// Every case is caused by the remote peer or the network (or by a wrong swarm key), never by a bug:
/// a connection that sees one is closed.
public enum NoiseError: Error, Equatable, Sendable {
    /// An AEAD tag did not verify: wrong key (different swarm key K), a flipped byte, or a replay.
    case decryptionFailed
    /// A handshake or transport message is shorter than its pattern requires, or longer than 65535 bytes.
    case invalidMessageLength
    /// A public key gave an all-zero Diffie-Hellman result (a low-order point).
    case invalidPublicKey
    /// The nonce counter reached 2^64-1, which Noise reserves; the session must end.
    case nonceExhausted
    /// The remote static key does not match the device key it claims in its handshake payload.
    case deviceKeyMismatch
    /// The handshake payload is not a valid harp handshake payload.
    case invalidPayload
    /// A handshake message arrived when none was expected (for example after the handshake finished).
    case unexpectedHandshakeMessage
}
