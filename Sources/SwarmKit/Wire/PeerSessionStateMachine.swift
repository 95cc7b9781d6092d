/// What the application learns when a connection is ready: who the peer is and what it said in `hello`.
public struct PeerSession: Sendable, Equatable {
    /// The peer's Ed25519 device key, proven by the handshake.
    public let remoteDeviceKey: [UInt8]
    /// The peer's `hello`.
    public let remoteHello: Hello
    /// The Noise handshake hash (channel binding; public).
    public let handshakeHash: [UInt8]
    /// The transport cipher.
    public let cipher: NoiseCipher

    /// The peer's short fingerprint (see `DeviceIdentity.fingerprint(of:)`).
    public var remoteFingerprint: String { DeviceIdentity.fingerprint(of: remoteDeviceKey) }
}

/// The life of one connection above the Noise layer (docs/protocol.md §5.3):
/// handshaking → awaiting the peer's `hello` → open → closing. Pure state, no I/O: the handler carries
/// out the actions.
struct PeerSessionStateMachine {
    private enum State {
        case handshaking
        case awaitingHello(NoiseHandshakeCompleted)
        case open(PeerSession)
        case closing(transportEstablished: Bool)
    }

    enum InboundAction: Equatable {
        /// Give the message to the application.
        case forward(WireMessage)
        /// Nothing to do (keep-alive, or anything after closing started).
        case drop
        /// The peer's hello was valid: the connection is ready.
        case ready(PeerSession)
        /// The peer broke the protocol: say goodbye with the error's reason and close.
        case violation(WireProtocolError)
        /// The peer said goodbye: pass it on and close.
        case goodbye(GoodbyeReason)
    }

    private var state: State = .handshaking
    /// What this side announced to the peer.
    private(set) var announced = AnnouncedChunks()
    /// Whether inbound requests must name an announced chunk.
    let enforceAnnouncements: Bool

    init(enforceAnnouncements: Bool = true) {
        self.enforceAnnouncements = enforceAnnouncements
    }

    /// True once the transport exists, so an encrypted goodbye can be sent.
    var transportEstablished: Bool {
        switch state {
        case .handshaking: return false
        case .awaitingHello, .open: return true
        case .closing(let established): return established
        }
    }

    var isClosing: Bool {
        if case .closing = state { return true }
        return false
    }

    mutating func handshakeCompleted(_ info: NoiseHandshakeCompleted) {
        guard case .handshaking = state else { preconditionFailure("handshake completed twice") }
        state = .awaitingHello(info)
    }

    mutating func receive(_ message: WireMessage) -> InboundAction {
        switch state {
        case .handshaking:
            preconditionFailure("a message before the handshake completed")
        case .closing:
            return .drop
        case .awaitingHello(let info):
            switch message {
            case .keepAlive:
                return .drop
            case .goodbye(let reason):
                state = .closing(transportEstablished: true)
                return .goodbye(reason)
            case .hello(let hello):
                guard hello.protocolVersion >= 1 else {
                    return violation(WireProtocolError(.unsupportedVersion, "hello version \(hello.protocolVersion)"))
                }
                guard hello.deviceKey == info.remoteDeviceKey else {
                    return violation(WireProtocolError(.deviceKeyMismatch, "hello names another device key"))
                }
                let session = PeerSession(
                    remoteDeviceKey: info.remoteDeviceKey, remoteHello: hello,
                    handshakeHash: info.handshakeHash, cipher: info.cipher)
                state = .open(session)
                return .ready(session)
            default:
                return violation(WireProtocolError(.helloRequired, "\(message.kind) before hello"))
            }
        case .open:
            switch message {
            case .keepAlive:
                return .drop
            case .hello:
                return violation(WireProtocolError(.malformedMessage, "second hello"))
            case .goodbye(let reason):
                state = .closing(transportEstablished: true)
                return .goodbye(reason)
            case .request(let block) where enforceAnnouncements && !announced.contains(block.chunk):
                return violation(WireProtocolError(.chunkNotAnnounced, "request for chunk \(block.chunk)"))
            default:
                return .forward(message)
            }
        }
    }

    /// Called for every outbound message. Returns true when the connection should close once the
    /// message is written (an outbound goodbye).
    mutating func willSend(_ message: WireMessage) -> Bool {
        announced.record(message)
        if case .goodbye = message {
            state = .closing(transportEstablished: transportEstablished)
            return true
        }
        return false
    }

    /// Starts closing. Returns whether a goodbye can (and should) still be sent.
    mutating func close() -> Bool {
        if case .closing = state { return false }
        let established = transportEstablished
        state = .closing(transportEstablished: established)
        return established
    }

    private mutating func violation(_ error: WireProtocolError) -> InboundAction {
        .violation(error)
    }
}
