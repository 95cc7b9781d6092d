/// What a completed handshake gives: the transport keys and the proven identity of the peer.
public struct PeerHandshakeResult: Sendable {
    /// The transport cipher states, with the rekey policy.
    public var transport: NoiseTransport
    /// The peer's Ed25519 device key, proven by the handshake (it is the Noise static key).
    public let remoteDeviceKey: [UInt8]
    /// The Noise handshake hash: a unique, public name for this session (channel binding).
    public let handshakeHash: [UInt8]
    /// The cipher both sides use.
    public let cipher: NoiseCipher
}

/// harp's handshake (docs/protocol.md §3) as a state machine over `NoiseHandshakeState`:
/// `Noise_XXpsk3_25519_{ChaChaPoly,AESGCM}_SHA256`, the swarm key K as the PSK, the device keys
/// (converted to X25519) as static keys, and each side's Ed25519 device key in its handshake payload.
///
/// The first message starts with one cipher-suite byte chosen by the initiator, which is also part of
/// the prologue `"harp/v1" || suite`, so changing it in flight makes the handshake fail.
struct PeerHandshake {
    enum Action {
        /// Send this handshake message.
        case send([UInt8])
        /// Send this last message; the handshake is complete on this side.
        case sendAndComplete([UInt8], PeerHandshakeResult)
        /// The handshake is complete; nothing to send.
        case complete(PeerHandshakeResult)
    }

    private enum State {
        case initiatorReady(NoiseHandshakeState)
        case responderAwaitingFirst
        case initiatorAwaitingSecond(NoiseHandshakeState)
        case responderAwaitingThird(NoiseHandshakeState)
        case complete
        case failed
    }

    static let payloadVersion: UInt8 = 1
    static let prologueLabel = Array("harp/v1".utf8)

    let isInitiator: Bool
    private var state: State
    private let identity: DeviceIdentity
    private let swarmKey: SecureBytes
    private let expectedRemoteKey: [UInt8]?
    private let rekeyInterval: UInt64

    /// The suite byte on the wire for each cipher.
    static func suiteByte(_ cipher: NoiseCipher) -> UInt8 { cipher == .chaChaPoly ? 1 : 2 }
    static func cipher(forSuite byte: UInt8) -> NoiseCipher? {
        switch byte {
        case 1: return .chaChaPoly
        case 2: return NoiseCipher.aesGCM.isAvailable ? .aesGCM : nil
        default: return nil
        }
    }

    init(
        initiator identity: DeviceIdentity, swarmKey: SecureBytes, cipher: NoiseCipher,
        expectedRemoteKey: [UInt8]? = nil, rekeyInterval: UInt64 = NoiseTransport.defaultRekeyInterval
    ) {
        precondition(cipher.isAvailable, "cipher not available on this CPU")
        self.isInitiator = true
        self.identity = identity
        self.swarmKey = swarmKey
        self.expectedRemoteKey = expectedRemoteKey
        self.rekeyInterval = rekeyInterval
        self.state = .initiatorReady(
            Self.noiseState(cipher: cipher, initiator: true, identity: identity, psk: swarmKey))
    }

    init(
        responder identity: DeviceIdentity, swarmKey: SecureBytes,
        rekeyInterval: UInt64 = NoiseTransport.defaultRekeyInterval
    ) {
        self.isInitiator = false
        self.identity = identity
        self.swarmKey = swarmKey
        self.expectedRemoteKey = nil
        self.rekeyInterval = rekeyInterval
        self.state = .responderAwaitingFirst
    }

    private static func noiseState(
        cipher: NoiseCipher, initiator: Bool, identity: DeviceIdentity, psk: SecureBytes
    ) -> NoiseHandshakeState {
        NoiseHandshakeState(
            pattern: .xxPSK3, cipher: cipher, initiator: initiator,
            prologue: prologueLabel + [suiteByte(cipher)],
            localStatic: identity.noiseStaticKey, psk: psk)
    }

    private var payload: [UInt8] { [Self.payloadVersion] + identity.publicKey }

    /// The initiator's first message (suite byte + Noise message 1).
    mutating func start() throws(NoiseError) -> [UInt8] {
        guard case .initiatorReady(var noise) = state else { preconditionFailure("start() twice or on a responder") }
        state = .failed
        let message = try noise.writeMessage(payload: [])
        state = .initiatorAwaitingSecond(noise)
        return [Self.suiteByte(noise.cipher)] + message
    }

    /// Handles one handshake message from the peer. Any error leaves the handshake failed.
    mutating func receive(_ message: [UInt8]) throws(NoiseError) -> Action {
        let current = state
        state = .failed
        switch current {
        case .responderAwaitingFirst:
            guard let suite = message.first, let cipher = Self.cipher(forSuite: suite) else { throw .invalidPayload }
            var noise = Self.noiseState(cipher: cipher, initiator: false, identity: identity, psk: swarmKey)
            guard try noise.readMessage(Array(message.dropFirst())).isEmpty else { throw .invalidPayload }
            let reply = try noise.writeMessage(payload: payload)
            state = .responderAwaitingThird(noise)
            return .send(reply)
        case .initiatorAwaitingSecond(var noise):
            let remoteKey = try Self.checkPayload(try noise.readMessage(message), noise: noise)
            if let expectedRemoteKey, expectedRemoteKey != remoteKey { throw .deviceKeyMismatch }
            let reply = try noise.writeMessage(payload: payload)
            state = .complete
            return .sendAndComplete(reply, result(noise, remoteKey))
        case .responderAwaitingThird(var noise):
            let remoteKey = try Self.checkPayload(try noise.readMessage(message), noise: noise)
            state = .complete
            return .complete(result(noise, remoteKey))
        case .complete, .failed, .initiatorReady:
            throw .unexpectedHandshakeMessage
        }
    }

    private func result(_ noise: NoiseHandshakeState, _ remoteKey: [UInt8]) -> PeerHandshakeResult {
        PeerHandshakeResult(
            transport: NoiseTransport(handshake: noise, rekeyInterval: rekeyInterval),
            remoteDeviceKey: remoteKey, handshakeHash: noise.handshakeHash, cipher: noise.cipher)
    }

    /// The payload is `version (1) || Ed25519 device key (32)`; the key must convert to the static key
    /// the peer proved it holds, which binds the device key to the session.
    private static func checkPayload(_ payload: [UInt8], noise: NoiseHandshakeState) throws(NoiseError) -> [UInt8] {
        guard payload.count == 33, payload[0] == payloadVersion else { throw .invalidPayload }
        let deviceKey = Array(payload[1...])
        guard let converted = DeviceIdentity.noiseStaticPublicKey(forDeviceKey: deviceKey),
            let remoteStatic = noise.remoteStatic, converted == remoteStatic
        else { throw .deviceKeyMismatch }
        return deviceKey
    }
}
