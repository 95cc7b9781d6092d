public import Logging
public import NIOCore

/// How one side of a peer connection behaves.
public struct PeerConfiguration: Sendable {
    /// This device's identity (its key is the Noise static key).
    public var identity: DeviceIdentity
    /// The swarm key K of the version both peers want (the Noise PSK).
    public var swarmKey: SecureBytes
    /// The cipher this side proposes as initiator (the responder follows the initiator's choice).
    public var cipher: NoiseCipher = .preferred
    /// As initiator: the device key the peer must have (from signaling), or nil to accept any member.
    public var expectedRemoteDeviceKey: [UInt8]?
    /// As initiator of a direct connection: the swarm id S written in the preamble before the handshake, for a
    /// listener that serves several swarms on one port (`SwarmSelector`); nil writes none.
    public var swarmSelector: [UInt8]?
    /// The port this side accepts peer connections on, told to the peer in `hello` (0: none).
    public var listenPort: UInt16 = 0
    /// Capability bits this side announces in `hello` (`Hello.Capability`).
    public var capabilities: UInt64 = 0
    /// Bytes of messages `PeerConnection.sender` lets wait in user space before `send` (bulk data) waits (see
    /// `PeerSender`). Small, so that a cancel or a choke still reaches blocks not yet sent instead of finding them
    /// queued for seconds behind others.
    public var sendQueueLimit = 512 * 1024
    /// Bytes of messages of any kind that may wait in user space for one peer: past it the peer is not reading what
    /// the protocol makes it read, and the swarm drops it (a fault). At least `sendQueueLimit` plus two messages of
    /// `WireLimits.maxMessageLength`.
    public var sendBacklogLimit = 4 * 1024 * 1024
    /// Unsent bytes a TCP socket may hold in the kernel (`TCP_NOTSENT_LOWAT`), for the same reason; what is in flight
    /// on the network is not limited by it.
    public var kernelUnsentLimit = 256 * 1024
    /// The TCP congestion control asked for on peer connections (nil: the system's default). Best effort: the kernel
    /// refuses an algorithm it lacks, or one an unprivileged process may not choose, and the default stays. CUBIC,
    /// because a fetcher opens a connection to every member over one uplink: with BBR (v1) eight such connections
    /// through a 10 Mbit/s uplink with a 50 ms buffer dropped 47 % of the packets in the swarm benchmark, and one
    /// connection sat in retransmission backoff with a window of one segment, so that a `have` took 24 s to arrive.
    public var congestionControl: String? = "cubic"
    /// A direct connection attempt gives up after this long (then a relay may be tried).
    public var connectTimeout: TimeAmount = .seconds(5)
    /// The handshake and the `hello` exchange must finish within this time.
    public var handshakeTimeout: TimeAmount = .seconds(10)
    /// Close with goodbye `idle-timeout` when nothing arrives for this long.
    public var idleTimeout: TimeAmount = .seconds(120)
    /// Send a keep-alive when nothing was sent for this long.
    public var keepAliveInterval: TimeAmount = .seconds(30)
    /// Refuse requests for chunks this side never announced (docs/protocol.md §6).
    public var enforceAnnouncements = true
    /// Messages per direction between Noise rekeys.
    public var rekeyInterval: UInt64 = NoiseTransport.defaultRekeyInterval
    /// Inbound messages buffered for the application before reading from the socket pauses (high), and
    /// resumes (low). At most 128 KiB each, so the default holds at most 4 MiB per connection.
    public var inboundLowWatermark = 8
    public var inboundHighWatermark = 32
    /// Where the connection logs; metadata only, never key material.
    public var logger = Logger(label: "harp.peer")

    public init(identity: DeviceIdentity, swarmKey: SecureBytes) {
        self.identity = identity
        self.swarmKey = swarmKey
    }
}

/// Sets up the peer protocol's handlers on a channel (docs/protocol.md §4-6). The pipeline, from the
/// socket up: `FrameDecoder` → `NoiseHandler` (which reads the messages, `TransportReader`) / `MessageEncoder` →
/// `PeerProtocolHandler` → (the application, usually through `NIOAsyncChannel`).
public enum PeerChannel {
    /// Which end of the handshake this side plays.
    public enum Role: Sendable { case initiator, responder }

    /// Adds the handlers synchronously (call on the channel's event loop, e.g. from a bootstrap's
    /// channel initializer). The returned future succeeds with the peer's session once the handshake
    /// and the `hello` exchange are done, and fails with the reason otherwise (the channel is then closed).
    public static func addHandlers(
        to channel: any Channel, role: Role, configuration: PeerConfiguration,
        position: ChannelPipeline.SynchronousOperations.Position = .last
    ) throws -> EventLoopFuture<PeerSession> {
        let handshake: PeerHandshake
        switch role {
        case .initiator:
            handshake = PeerHandshake(
                initiator: configuration.identity, swarmKey: configuration.swarmKey,
                cipher: configuration.cipher,
                expectedRemoteKey: configuration.expectedRemoteDeviceKey,
                rekeyInterval: configuration.rekeyInterval)
        case .responder:
            handshake = PeerHandshake(
                responder: configuration.identity, swarmKey: configuration.swarmKey,
                rekeyInterval: configuration.rekeyInterval)
        }
        var logger = configuration.logger
        logger[metadataKey: "peer.role"] = "\(role)"
        let ready = channel.eventLoop.makePromise(of: PeerSession.self)
        var handlers: [any ChannelHandler] = []
        if role == .initiator, let selector = configuration.swarmSelector {
            handlers.append(SelectorWriter(swarmID: selector))
        }
        handlers += [
            ByteToMessageHandler(FrameDecoder()),
            NoiseHandler(handshake: handshake, handshakeTimeout: configuration.handshakeTimeout, logger: logger),
            MessageEncoder(),
            PeerProtocolHandler(
                localDeviceKey: configuration.identity.publicKey, listenPort: configuration.listenPort,
                capabilities: configuration.capabilities,
                enforceAnnouncements: configuration.enforceAnnouncements, isInitiator: role == .initiator,
                idleTimeout: configuration.idleTimeout,
                keepAliveInterval: configuration.keepAliveInterval, ready: ready, logger: logger),
        ]
        try channel.pipeline.syncOperations.addHandlers(handlers, position: position)
        // The hello exchange shares the handshake deadline.
        let deadline = channel.eventLoop.scheduleTask(in: configuration.handshakeTimeout) {
            ready.fail(PeerConnectionError.handshakeTimeout(configuration.handshakeTimeout))
            channel.close(promise: nil)
        }
        ready.futureResult.whenComplete { _ in deadline.cancel() }
        return ready.futureResult
    }
}
