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
    /// Whether this side was the Noise initiator (it numbers the channels it attaches odd, the responder even).
    public let isInitiator: Bool

    /// Whether both sides can carry other swarms on this connection (docs/protocol.md §5.4).
    public var carriesChannels: Bool { remoteHello.capabilities & Hello.Capability.channels != 0 }

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

    /// What an outbound message becomes (`willSend`).
    enum OutboundAction: Equatable {
        /// Write `message`, after `switchTo` (a `channel` message) when there is one; close once it is written when
        /// `closeAfter` (an outbound goodbye).
        case write(WireMessage, switchTo: WireMessage?, closeAfter: Bool)
        /// Write nothing: a message on a channel that has ended (the peer's `detach` crossed it).
        case drop
    }

    /// Where a channel other than 0 stands (docs/protocol.md §5.4).
    enum ChannelState: Equatable {
        /// This side sent `attach`; no answer yet.
        case requested
        /// The peer sent `attach`; this side has not answered.
        case offered
        /// Attached: messages flow both ways.
        case open
        /// This side sent `detach`; the peer's answering `detach` has not arrived (what it sent before is dropped).
        case closing
        /// The peer sent `detach`; this side has not answered.
        case ended
        /// Channel 0 after its detach was answered (other channels' entries are removed then, so that a connection
        /// without channels can be told from one whose channel 0 has ended).
        case gone
    }

    private var state: State = .handshaking
    /// What this side announced to the peer on channel 0.
    private(set) var announced = AnnouncedChunks()
    /// Whether inbound requests must name an announced chunk.
    let enforceAnnouncements: Bool
    /// Whether this side was the Noise initiator.
    let isInitiator: Bool
    /// Whether this side's hello offers channels.
    let offersChannels: Bool
    /// The channels other than 0, at most `WireLimits.maxChannels - 1`.
    private(set) var channels: [UInt16: ChannelState] = [:]
    /// What this side announced on each open channel.
    private var channelAnnounced: [UInt16: AnnouncedChunks] = [:]
    /// The channel the peer's messages are on now, and the one this side's are.
    private(set) var inboundChannel: UInt16 = 0
    private var outboundChannel: UInt16 = 0

    init(enforceAnnouncements: Bool = true, isInitiator: Bool = true, offersChannels: Bool = false) {
        self.enforceAnnouncements = enforceAnnouncements
        self.isInitiator = isInitiator
        self.offersChannels = offersChannels
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
                var remote = hello
                // Channels only when both offer them: the application reads `carriesChannels` from the session.
                if !offersChannels { remote.capabilities &= ~Hello.Capability.channels }
                let session = PeerSession(
                    remoteDeviceKey: info.remoteDeviceKey, remoteHello: remote,
                    handshakeHash: info.handshakeHash, cipher: info.cipher, isInitiator: isInitiator)
                state = .open(session)
                // With channels, channel 0 (the handshake's swarm) may be detached like any other.
                if session.carriesChannels { channels[0] = .open }
                return .ready(session)
            default:
                return violation(WireProtocolError(.helloRequired, "\(message.kind) before hello"))
            }
        case .open(let session):
            switch message {
            case .keepAlive:
                return .drop
            case .hello:
                return violation(WireProtocolError(.malformedMessage, "second hello"))
            case .goodbye(let reason):
                state = .closing(transportEstablished: true)
                return .goodbye(reason)
            case .onChannel:
                return violation(WireProtocolError(.unknownMessage, "a message that never travels"))
            case .attach, .attached, .detach, .channel:
                guard session.carriesChannels else {
                    return violation(
                        WireProtocolError(.unknownMessage, "\(message.kind) without the channels capability"))
                }
                return receiveChannelControl(message)
            default:
                return receiveOnChannel(message)
            }
        }
    }

    /// `attach`, `attached`, `detach` and `channel` from the peer (both sides offered channels).
    private mutating func receiveChannelControl(_ message: WireMessage) -> InboundAction {
        switch message {
        case .channel(let channel):
            guard channels[channel] == .open || channels[channel] == .closing else {
                return violation(WireProtocolError(.malformedMessage, "messages on channel \(channel), not attached"))
            }
            inboundChannel = channel
            return .drop
        case .attach(let attach):
            // The peer numbers its channels by its own role: odd if it was the initiator.
            guard attach.channel % 2 == (isInitiator ? 0 : 1), channels[attach.channel] == nil else {
                return violation(WireProtocolError(.malformedMessage, "attach of channel \(attach.channel)"))
            }
            channels[attach.channel] = .offered
            return .forward(message)
        case .attached(let attached):
            guard channels[attached.channel] == .requested else {
                return violation(WireProtocolError(.malformedMessage, "attached for channel \(attached.channel)"))
            }
            channels[attached.channel] = .open
            channelAnnounced[attached.channel] = AnnouncedChunks()
            return .forward(message)
        case .detach(let channel, _):
            switch channels[channel] {
            case .requested:
                // Refused.
                channels[channel] = nil
                return .forward(message)
            case .open:
                channels[channel] = .ended
                return .forward(message)
            case .closing:
                // The answer to this side's detach: the channel is over.
                channels[channel] = channel == 0 ? .gone : nil
                channelAnnounced[channel] = nil
                return .drop
            case .offered, .ended, .gone, nil:
                return violation(WireProtocolError(.malformedMessage, "detach of channel \(channel)"))
            }
        default:
            preconditionFailure("not a channel control message")
        }
    }

    /// A message of the swarm protocol, on the channel the peer switched to last.
    private func receiveOnChannel(_ message: WireMessage) -> InboundAction {
        let channel = inboundChannel
        // Channel 0 is open until detached (and always, on a connection without channels).
        switch channel == 0 ? channels[0] ?? .open : channels[channel] {
        case .open:
            if case .request(let block) = message, enforceAnnouncements {
                let announcedHere =
                    channel == 0
                    ? announced.contains(block.chunk) : channelAnnounced[channel]?.contains(block.chunk) == true
                guard announcedHere else {
                    return .violation(
                        WireProtocolError(.chunkNotAnnounced, "request for chunk \(block.chunk) on channel \(channel)"))
                }
            }
            return .forward(channel == 0 ? message : .onChannel(channel, message))
        case .closing:
            // Sent before the peer read this side's detach.
            return .drop
        default:
            return .violation(
                WireProtocolError(.malformedMessage, "\(message.kind) on channel \(channel) after detach"))
        }
    }

    /// Called for every outbound message: what to write (see `OutboundAction`).
    mutating func willSend(_ message: WireMessage) -> OutboundAction {
        switch message {
        case .goodbye:
            state = .closing(transportEstablished: transportEstablished)
            return .write(message, switchTo: nil, closeAfter: true)
        case .hello, .keepAlive, .channel:
            return .write(message, switchTo: nil, closeAfter: false)
        case .attach(let attach):
            precondition(channels[attach.channel] == nil, "attach of a channel in use")
            channels[attach.channel] = .requested
            return .write(message, switchTo: nil, closeAfter: false)
        case .attached(let attached):
            guard channels[attached.channel] == .offered else { return .drop }
            channels[attached.channel] = .open
            channelAnnounced[attached.channel] = AnnouncedChunks()
            return .write(message, switchTo: nil, closeAfter: false)
        case .detach(let channel, _):
            switch channels[channel] {
            case .offered:
                // A refusal: nothing more on it.
                channels[channel] = nil
            case .open:
                channels[channel] = .closing
            case .ended:
                channels[channel] = channel == 0 ? .gone : nil
                channelAnnounced[channel] = nil
            case .requested, .closing, .gone, nil:
                return .drop
            }
            return .write(message, switchTo: nil, closeAfter: false)
        case .onChannel(let channel, let inner):
            guard channels[channel] == .open else { return .drop }
            channelAnnounced[channel]?.record(inner)
            return .write(inner, switchTo: switching(to: channel), closeAfter: false)
        default:
            if let zero = channels[0], zero != .open { return .drop }
            announced.record(message)
            return .write(message, switchTo: switching(to: 0), closeAfter: false)
        }
    }

    /// The `channel` message to write before a message on `channel`, if the last one went elsewhere.
    private mutating func switching(to channel: UInt16) -> WireMessage? {
        guard channel != outboundChannel else { return nil }
        outboundChannel = channel
        return .channel(channel)
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
