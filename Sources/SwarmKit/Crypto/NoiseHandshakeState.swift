/// The handshake patterns harp implements (Noise revision 34, sections 7.5 and 9).
public enum NoisePattern: String, Sendable {
    /// `XX`: `-> e`, `<- e, ee, s, es`, `-> s, se`. Used only to check against the test vectors.
    case xx = "XX"
    /// `XXpsk3`: `XX` with a `psk` token at the end of the third message. harp's handshake.
    case xxPSK3 = "XXpsk3"

    enum Token { case e, s, ee, es, se, psk }

    var messagePatterns: [[Token]] {
        switch self {
        case .xx: return [[.e], [.e, .ee, .s, .es], [.s, .se]]
        case .xxPSK3: return [[.e], [.e, .ee, .s, .es], [.s, .se, .psk]]
        }
    }

    var usesPSK: Bool { self == .xxPSK3 }
}

/// Noise `HandshakeState` (revision 34, section 5.3) for the `XX` and `XXpsk3` patterns over 25519 and
/// SHA-256, as a state machine: `writeMessage`/`readMessage` alternate, and after the last message
/// `split()` gives the transport cipher states.
///
/// A failed `readMessage` leaves the state unusable; the caller must abandon the handshake.
public struct NoiseHandshakeState: Sendable {
    /// Noise's maximum message length.
    public static let maxMessageLength = 65535

    public let isInitiator: Bool
    let pattern: NoisePattern
    /// The cipher function of this handshake and of its transport.
    public var cipher: NoiseCipher { symmetric.cipherState.cipher }
    private var symmetric: NoiseSymmetricState
    private let localStatic: X25519KeyPair
    private var localEphemeral: X25519KeyPair?
    /// The remote party's static public key, once received.
    public private(set) var remoteStatic: [UInt8]?
    private var remoteEphemeral: [UInt8]?
    private let psk: SecureBytes?
    private var messageIndex = 0
    private var failed = false

    /// The full Noise protocol name, e.g. `Noise_XXpsk3_25519_ChaChaPoly_SHA256`.
    public static func protocolName(pattern: NoisePattern, cipher: NoiseCipher) -> String {
        "Noise_\(pattern.rawValue)_25519_\(cipher.rawValue)_SHA256"
    }

    /// Noise `Initialize(...)`. `ephemeral` is for test vectors only; normally a fresh key is generated.
    init(
        pattern: NoisePattern, cipher: NoiseCipher, initiator: Bool, prologue: [UInt8],
        localStatic: X25519KeyPair, psk: SecureBytes?, ephemeral: X25519KeyPair? = nil
    ) {
        precondition(pattern.usesPSK == (psk != nil), "XXpsk3 needs exactly one PSK, XX none")
        precondition(psk == nil || psk?.count == 32)
        var state = NoiseSymmetricState(
            protocolName: Self.protocolName(pattern: pattern, cipher: cipher), cipher: cipher)
        state.mixHash(prologue)
        self.symmetric = state
        self.isInitiator = initiator
        self.pattern = pattern
        self.localStatic = localStatic
        self.localEphemeral = ephemeral
        self.psk = psk
    }

    /// True when all handshake messages have been written or read.
    public var isComplete: Bool { messageIndex == pattern.messagePatterns.count }

    /// True when the next step is `writeMessage` (false: `readMessage`).
    public var isMyTurn: Bool { !isComplete && (messageIndex % 2 == 0) == isInitiator }

    /// The handshake hash `h`; after the last message it identifies the session (channel binding).
    public var handshakeHash: [UInt8] { symmetric.handshakeHash }

    /// Noise `WriteMessage(payload, message_buffer)`.
    public mutating func writeMessage(payload: [UInt8]) throws(NoiseError) -> [UInt8] {
        precondition(isMyTurn && !failed, "writeMessage out of turn")
        var out: [UInt8] = []
        for token in pattern.messagePatterns[messageIndex] {
            switch token {
            case .e:
                let ephemeral = localEphemeral ?? X25519KeyPair.generate()
                localEphemeral = ephemeral
                out += ephemeral.publicKey
                symmetric.mixHash(ephemeral.publicKey)
                if pattern.usesPSK { ephemeral.publicKey.withUnsafeBytes { symmetric.mixKey($0) } }
            case .s:
                out += try symmetric.encryptAndHash(localStatic.publicKey)
            default:
                try mixDH(token)
            }
        }
        out += try symmetric.encryptAndHash(payload)
        guard out.count <= Self.maxMessageLength else { preconditionFailure("handshake payload too large") }
        messageIndex += 1
        return out
    }

    /// Noise `ReadMessage(message, payload_buffer)`: returns the payload.
    public mutating func readMessage(_ message: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard !isComplete, !isMyTurn, !failed else { throw .unexpectedHandshakeMessage }
        guard message.count <= Self.maxMessageLength else { throw .invalidMessageLength }
        failed = true  // cleared only if the whole message is accepted
        var rest = message[...]
        for token in pattern.messagePatterns[messageIndex] {
            switch token {
            case .e:
                guard rest.count >= 32 else { throw .invalidMessageLength }
                let key = Array(rest.prefix(32))
                rest = rest.dropFirst(32)
                remoteEphemeral = key
                symmetric.mixHash(key)
                if pattern.usesPSK { key.withUnsafeBytes { symmetric.mixKey($0) } }
            case .s:
                let length = symmetric.cipherState.hasKey ? 32 + NoiseCipher.tagLength : 32
                guard rest.count >= length else { throw .invalidMessageLength }
                remoteStatic = try symmetric.decryptAndHash(Array(rest.prefix(length)))
                rest = rest.dropFirst(length)
            default:
                try mixDH(token)
            }
        }
        if symmetric.cipherState.hasKey, rest.count < NoiseCipher.tagLength { throw .invalidMessageLength }
        let payload = try symmetric.decryptAndHash(Array(rest))
        failed = false
        messageIndex += 1
        return payload
    }

    /// Noise `Split()`, available once the handshake is complete: (send, receive) for this party.
    public func split() -> (send: NoiseCipherState, receive: NoiseCipherState) {
        precondition(isComplete && !failed, "split() before the handshake completed")
        let (first, second) = symmetric.split()
        return isInitiator ? (first, second) : (second, first)
    }

    private mutating func mixDH(_ token: NoisePattern.Token) throws(NoiseError) {
        guard let localEphemeral else { preconditionFailure("DH token before e") }
        let secret: SecureBytes
        switch (token, isInitiator) {
        case (.ee, _):
            secret = try localEphemeral.sharedSecret(with: try required(remoteEphemeral))
        case (.es, true), (.se, false):
            secret = try localEphemeral.sharedSecret(with: try required(remoteStatic))
        case (.es, false), (.se, true):
            secret = try localStatic.sharedSecret(with: try required(remoteEphemeral))
        case (.psk, _):
            guard let psk else { preconditionFailure("psk token without a PSK") }
            symmetric.mixKeyAndHash(psk)
            return
        default:
            preconditionFailure("not a DH token")
        }
        symmetric.mixKey(secret)
    }

    private func required(_ key: [UInt8]?) throws(NoiseError) -> [UInt8] {
        guard let key else { throw .invalidMessageLength }
        return key
    }
}
