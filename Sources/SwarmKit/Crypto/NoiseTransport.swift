/// The two transport `CipherState`s of an established session, with harp's rekey policy.
///
/// Each transport frame carries at most `maxPlaintextLength` bytes of plaintext, so a ciphertext is at
/// most 65535 bytes, Noise's message limit. Nonces are the per-direction message counters. Both sides
/// call Noise `Rekey()` on a direction's key before that direction's message number `rekeyInterval`,
/// `2 * rekeyInterval`, ... (default every 2^32 messages, about 256 TiB at full frames); no message
/// announces it, the counters keep both sides in step. The counter reaching 2^64-1 (never, in practice)
/// ends the session with `NoiseError.nonceExhausted` rather than wrapping.
public struct NoiseTransport: Sendable {
    /// The most plaintext bytes one frame carries: 65535 - 16.
    public static let maxPlaintextLength = NoiseHandshakeState.maxMessageLength - NoiseCipher.tagLength
    /// The default number of messages per direction between rekeys.
    public static let defaultRekeyInterval: UInt64 = 1 << 32

    private var send: NoiseCipherState
    private var receive: NoiseCipherState
    private let rekeyInterval: UInt64

    /// The cipher in use.
    public var cipher: NoiseCipher { send.cipher }
    /// How many messages have been sent / received.
    public var sentCount: UInt64 { send.nonce }
    public var receivedCount: UInt64 { receive.nonce }

    init(send: NoiseCipherState, receive: NoiseCipherState, rekeyInterval: UInt64 = defaultRekeyInterval) {
        precondition(rekeyInterval > 0)
        self.send = send
        self.receive = receive
        self.rekeyInterval = rekeyInterval
    }

    /// The transport of a completed handshake.
    public init(handshake: NoiseHandshakeState) {
        let (send, receive) = handshake.split()
        self.init(send: send, receive: receive)
    }

    init(handshake: NoiseHandshakeState, rekeyInterval: UInt64) {
        let (send, receive) = handshake.split()
        self.init(send: send, receive: receive, rekeyInterval: rekeyInterval)
    }

    /// Both ends of a session made by a real in-memory handshake between two fresh identities (for
    /// benchmarks and tools that measure the transport without sockets).
    public static func makeInMemoryPair(
        cipher: NoiseCipher
    ) throws -> (initiator: NoiseTransport, responder: NoiseTransport) {
        let key = Sodium.randomBytes(32)
        var initiator = PeerHandshake(initiator: .generate(), swarmKey: key, cipher: cipher)
        var responder = PeerHandshake(responder: .generate(), swarmKey: key)
        guard case .send(let second) = try responder.receive(try initiator.start()),
            case .sendAndComplete(let third, let initiatorResult) = try initiator.receive(second),
            case .complete(let responderResult) = try responder.receive(third)
        else { preconditionFailure("an in-memory handshake between two honest ends cannot take another path") }
        return (initiatorResult.transport, responderResult.transport)
    }

    /// Encrypts one frame: `out.count` must be `plaintext.count + 16`, `plaintext.count` at most
    /// `maxPlaintextLength`. The associated data is empty.
    public mutating func seal(
        _ plaintext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) throws(NoiseError) {
        precondition(plaintext.count <= Self.maxPlaintextLength, "frame plaintext over the limit")
        if send.nonce != 0, send.nonce % rekeyInterval == 0 { send.rekey() }
        try send.encryptWithAd(UnsafeRawBufferPointer(start: nil, count: 0), plaintext: plaintext, into: out)
    }

    /// Whether `seal(_:then:into:)` seals two buffers where they are (AESGCM); ChaChaPoly joins them in a scratch
    /// buffer, and a caller with a buffer of its own to join them in does better to use that.
    public var sealsInParts: Bool { cipher == .aesGCM }

    /// Encrypts one frame whose plaintext is `first` followed by `second` (at most `maxPlaintextLength` together),
    /// without joining them first where the cipher allows (`sealsInParts`): `out.count` must be
    /// `first.count + second.count + 16`.
    public mutating func seal(
        _ first: UnsafeRawBufferPointer, then second: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) throws(NoiseError) {
        precondition(first.count + second.count <= Self.maxPlaintextLength, "frame plaintext over the limit")
        if send.nonce != 0, send.nonce % rekeyInterval == 0 { send.rekey() }
        try send.encryptWithAd(UnsafeRawBufferPointer(start: nil, count: 0), plaintext: first, then: second, into: out)
    }

    /// Decrypts one frame into `out` (`ciphertext.count - 16` bytes). A failure is fatal for the session.
    public mutating func open(
        _ ciphertext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) throws(NoiseError) {
        guard ciphertext.count >= NoiseCipher.tagLength, ciphertext.count <= NoiseHandshakeState.maxMessageLength,
            out.count == ciphertext.count - NoiseCipher.tagLength
        else { throw .invalidMessageLength }
        if receive.nonce != 0, receive.nonce % rekeyInterval == 0 { receive.rekey() }
        try receive.decryptWithAd(UnsafeRawBufferPointer(start: nil, count: 0), ciphertext: ciphertext, into: out)
    }

    /// Decrypts one frame in parts (`NoiseCipherState.decryptInParts`): `body` takes the plaintext through the opener
    /// to wherever it likes, and its result is returned only when the frame's tag verifies. A failure is fatal for the
    /// session.
    mutating func open<R>(
        inParts ciphertext: UnsafeRawBufferPointer, _ body: (inout FrameOpener) -> R
    ) throws(NoiseError) -> R {
        guard ciphertext.count >= NoiseCipher.tagLength, ciphertext.count <= NoiseHandshakeState.maxMessageLength
        else { throw .invalidMessageLength }
        if receive.nonce != 0, receive.nonce % rekeyInterval == 0 { receive.rekey() }
        return try receive.decryptInParts(ciphertext: ciphertext, body)
    }

    /// Array conveniences (tests and benchmarks).
    public mutating func seal(_ plaintext: [UInt8]) throws(NoiseError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: plaintext.count + NoiseCipher.tagLength)
        var failure: NoiseError?
        plaintext.withUnsafeBytes { p in
            out.withUnsafeMutableBytes { o in
                do throws(NoiseError) { try seal(p, into: o) } catch { failure = error }
            }
        }
        if let failure { throw failure }
        return out
    }

    public mutating func open(_ ciphertext: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard ciphertext.count >= NoiseCipher.tagLength else { throw .invalidMessageLength }
        var out = [UInt8](repeating: 0, count: ciphertext.count - NoiseCipher.tagLength)
        var failure: NoiseError?
        ciphertext.withUnsafeBytes { c in
            out.withUnsafeMutableBytes { o in
                do throws(NoiseError) { try open(c, into: o) } catch { failure = error }
            }
        }
        if let failure { throw failure }
        return out
    }
}
