internal import Logging
public import NIOCore
public import NIOPosix

#if canImport(Glibc)
    internal import Glibc
#elseif canImport(Darwin)
    internal import Darwin
#endif

/// An open, encrypted, authenticated connection to one peer.
///
/// Use it like any `NIOAsyncChannel`: `try await connection.channel.executeThenClose { inbound, outbound in ... }`.
/// The inbound sequence yields the peer's messages (never `hello` or keep-alives) and throws the
/// `WireProtocolError` that closed the connection, if any. Send every message through `sender`, the connection's one
/// bounded queue: it bounds what a slow or hostile reader can make this side buffer (`send` for bulk data, `enqueue`
/// for control messages). End with `finish(reason:)`, which sends goodbye and waits until the connection has closed
/// (leaving `executeThenClose` right after a write may drop what is queued).
public struct PeerConnection: Sendable {
    /// Who the peer is.
    public let session: PeerSession
    /// The message channel.
    public let channel: NIOAsyncChannel<WireMessage, WireMessage>
    /// The connection's one outbound queue (`PeerConfiguration.sendQueueLimit` and `sendBacklogLimit`).
    public let sender: PeerSender
    /// On a connection a selecting listener accepted: the swarm id its preamble named (`SwarmSelector`).
    public let swarmID: [UInt8]?

    init(
        session: PeerSession, channel: NIOAsyncChannel<WireMessage, WireMessage>, limits: PeerSender.Limits,
        swarmID: [UInt8]? = nil
    ) {
        self.session = session
        self.channel = channel
        self.sender = PeerSender(
            channel: channel.channel, queueLimit: limits.queue, backlogLimit: limits.backlog,
            kernelUnsentLimit: limits.kernelUnsent)
        self.swarmID = swarmID
    }

    /// Sends `goodbye(reason)` after everything already queued in `sender`, and waits until the connection has
    /// closed (the protocol handler closes it once the goodbye is written). A peer that does not read within
    /// `grace`, or whose backlog is full, is not waited for: the connection is closed without the goodbye.
    public func finish(reason: GoodbyeReason = .normal, grace: TimeAmount = .seconds(5)) async throws {
        let channel = self.channel.channel
        let deadline = channel.eventLoop.scheduleTask(in: grace) { channel.close(promise: nil) }
        defer { deadline.cancel() }
        do {
            try sender.enqueue(.goodbye(reason))
        } catch {
            channel.close(promise: nil)
        }
        try await channel.closeFuture.get()
    }

    /// How much a peer connection reads from its socket at once: NIO's adaptive allocator, up to 256 KiB instead of its
    /// default 64 KiB. A fetcher reads a seeder's 64 KiB frames back to back; with 64 KiB reads most reads ended inside
    /// a frame, whose start then waited to be joined to the next read, and every 64 KiB cost a read and a pass through
    /// the pipeline. The allocator grows only while reads fill it and shrinks again, so an idle or slow connection
    /// keeps small buffers (docs/benchmarks.md, "One-to-one, fourth part").
    static var receiveAllocator: AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 256 * 1024)
    }

    /// Connects to `host:port` as initiator and returns once the handshake and hello exchange are done.
    ///
    /// - Throws: `NoiseError` (wrong swarm key, forged device key, …), `PeerConnectionError`,
    ///   `WireProtocolError`, or a socket error.
    public static func connect(
        host: String, port: Int, configuration: PeerConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> PeerConnection {
        let (channel, ready) = try await ClientBootstrap(group: group)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.tcpNotSentLowWatermark, value: SocketOptionValue(configuration.kernelUnsentLimit))
            .channelOption(.recvAllocator, value: receiveAllocator)
            .connect(host: host, port: port, channelInitializer: initializer(.initiator, configuration))
        return try await established(channel, ready: ready, configuration: configuration)
    }

    /// One side of a TCP simultaneous open (hole punching, docs/nat.md): connects to `host:port` from `localPort`
    /// (the listening port, shared with `SO_REUSEADDR` and `SO_REUSEPORT`, so the NAT's mapping of the listening
    /// port is the one the other side dials) while the other side does the same towards us. Both ends are TCP
    /// clients, so the Noise roles cannot come from who connected: the caller passes `role` (the device-key order,
    /// the same on both sides).
    ///
    /// The initiator sends the swarm preamble (`configuration.swarmSelector`) as a dial does, and the responder reads
    /// it before the handshake, as a listener does: so when the initiator's SYN reaches the other host before that
    /// one's own punch has left (a router that still holds the flow of an earlier punch lets it in), the other host's
    /// listener accepts it as any dialled connection, and the punch still connects. Without a selector (a listener for
    /// one swarm) neither side sends or reads a preamble.
    public static func punch(
        host: String, port: Int, localPort: Int, role: PeerChannel.Role, configuration: PeerConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> PeerConnection {
        let local = try SocketAddress(ipAddress: host.contains(":") ? "::" : "0.0.0.0", port: localPort)
        let (initializer, effective) = punchInitializer(role, configuration)
        let (channel, ready) = try await ClientBootstrap(group: group)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(ChannelOptions.socket(SocketOptionLevel(SOL_SOCKET), SO_REUSEPORT), value: 1)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.tcpNotSentLowWatermark, value: SocketOptionValue(configuration.kernelUnsentLimit))
            .channelOption(.recvAllocator, value: receiveAllocator)
            .bind(to: local)
            .connect(host: host, port: port, channelInitializer: initializer)
        return try await established(channel, ready: ready, configuration: effective)
    }

    /// The peer protocol over `socket`, a TCP connection a spray punch made (`SprayPunch`, docs/nat.md): both ends
    /// were TCP clients, so `role` is the caller's, with the preamble as in ``punch(host:port:localPort:role:configuration:group:)``.
    /// The connection owns the socket from here (closed with it, or when this throws).
    public static func adopt(
        socket: CInt, role: PeerChannel.Role, configuration: PeerConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> PeerConnection {
        let (initializer, effective) = punchInitializer(role, configuration)
        let (channel, ready): Pending
        do {
            (channel, ready) = try await ClientBootstrap(group: group)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelOption(.tcpNotSentLowWatermark, value: SocketOptionValue(configuration.kernelUnsentLimit))
                .channelOption(.recvAllocator, value: receiveAllocator)
                .withConnectedSocket(socket, channelInitializer: initializer)
        } catch {
            _ = Glibc.close(socket)
            throw error
        }
        return try await established(channel, ready: ready, configuration: effective)
    }

    /// A punched connection's channel set-up for `role`: the initiator sends the swarm preamble as a dial does, the
    /// responder reads it as a listener does (and then runs with the configuration returned, which has no selector).
    static func punchInitializer(
        _ role: PeerChannel.Role, _ configuration: PeerConfiguration
    ) -> (@Sendable (any Channel) -> EventLoopFuture<Pending>, PeerConfiguration) {
        guard role == .responder, let swarmID = configuration.swarmSelector else {
            return (initializer(role, configuration), configuration)
        }
        var responder = configuration
        responder.swarmSelector = nil
        return (
            { [responder] channel in
                channel.eventLoop.makeCompletedFuture { () -> Pending in
                    let selected = channel.eventLoop.makePromise(of: SelectedSession.self)
                    try channel.pipeline.syncOperations.addHandler(
                        SelectorReader(
                            select: { $0 == swarmID ? responder : nil }, ready: selected,
                            timeout: responder.handshakeTimeout, logger: responder.logger))
                    let wrapped = try NIOAsyncChannel<WireMessage, WireMessage>(
                        wrappingChannelSynchronously: channel, configuration: responder.asyncChannelConfiguration)
                    return (wrapped, selected.futureResult.map(\.session))
                }
            }, responder
        )
    }

    /// A channel wrapped for async use, and the future of its handshake.
    typealias Pending = (NIOAsyncChannel<WireMessage, WireMessage>, EventLoopFuture<PeerSession>)

    /// A channel initializer that sets up the peer protocol (`PeerChannel.addHandlers`) and wraps the channel for
    /// async use.
    static func initializer(
        _ role: PeerChannel.Role, _ configuration: PeerConfiguration
    ) -> @Sendable (any Channel) -> EventLoopFuture<Pending> {
        { channel in
            channel.eventLoop.makeCompletedFuture {
                askForCongestionControl(configuration.congestionControl, on: channel)
                let ready = try PeerChannel.addHandlers(to: channel, role: role, configuration: configuration)
                let wrapped = try NIOAsyncChannel<WireMessage, WireMessage>(
                    wrappingChannelSynchronously: channel, configuration: configuration.asyncChannelConfiguration)
                return (wrapped, ready)
            }
        }
    }

    /// Asks the kernel for congestion control `name` on `channel`'s socket (`TCP_CONGESTION`), best effort: a refusal
    /// leaves the system's default.
    static func askForCongestionControl(_ name: String?, on channel: any Channel) {
        guard let name, let provider = channel as? any SocketOptionProvider else { return }
        var bytes = [UInt8](name.utf8.prefix(15))
        bytes += [UInt8](repeating: 0, count: 16 - bytes.count)
        let value = CongestionName(bytes: bytes)
        _ = provider.unsafeSetSocketOption(
            level: SocketOptionLevel(IPPROTO_TCP), name: SocketOptionName(TCP_CONGESTION), value: value)
    }

    /// The connection once its handshake and `hello` exchange are done; the channel is closed if they fail.
    static func established(
        _ channel: NIOAsyncChannel<WireMessage, WireMessage>, ready: EventLoopFuture<PeerSession>,
        configuration: PeerConfiguration
    ) async throws -> PeerConnection {
        do {
            return PeerConnection(session: try await ready.get(), channel: channel, limits: configuration.senderLimits)
        } catch {
            try? await channel.channel.close()
            throw error
        }
    }
}

/// A listening socket that accepts peer connections as responder: for one swarm, or for every swarm a process
/// serves, chosen by each connection's preamble (`SwarmSelector`).
public struct PeerListener: Sendable {
    typealias Accepted = (NIOAsyncChannel<WireMessage, WireMessage>, EventLoopFuture<SelectedSession>)
    private let server: NIOAsyncChannel<Accepted, Never>
    private let logger: Logger
    private let senderLimits: PeerSender.Limits
    /// The bound address (use port 0 to let the system choose, then read it here).
    public var localAddress: SocketAddress? { server.channel.localAddress }

    /// Binds `host:port` (port 0 picks a free port) for the one swarm of `configuration`; connections carry no
    /// preamble. A fixed port another socket listens on throws ``PeerListenerError/portInUse(host:port:)``.
    public static func bind(
        host: String, port: Int, configuration: PeerConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> PeerListener {
        try PortProbe.checkFree(host: host, port: port)
        let initializer = PeerConnection.initializer(.responder, configuration)
        let server = try await bootstrap(group: group, configuration: configuration)
            .bind(host: host, port: port) { channel in
                initializer(channel).map { wrapped, ready in
                    (wrapped, ready.map { SelectedSession(session: $0, swarmID: nil) })
                }
            }
        return PeerListener(server: server, logger: configuration.logger, senderLimits: configuration.senderLimits)
    }

    /// Binds `host:port` for every swarm `select` knows: each connection's preamble names the swarm id, `select`
    /// returns that swarm's configuration (nil closes the connection). `template` gives what all swarms share: the
    /// socket and buffer limits, the deadline for preamble and handshake, the logger. `select` runs on an event loop:
    /// it must not block. A fixed port another socket listens on throws ``PeerListenerError/portInUse(host:port:)``
    /// (the listener's `SO_REUSEPORT` would otherwise share it with that socket).
    public static func bind(
        host: String, port: Int, template: PeerConfiguration,
        select: @escaping @Sendable ([UInt8]) -> PeerConfiguration?,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> PeerListener {
        try PortProbe.checkFree(host: host, port: port)
        let server = try await bootstrap(group: group, configuration: template)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    PeerConnection.askForCongestionControl(template.congestionControl, on: channel)
                    let ready = channel.eventLoop.makePromise(of: SelectedSession.self)
                    try channel.pipeline.syncOperations.addHandler(
                        SelectorReader(
                            select: select, ready: ready, timeout: template.handshakeTimeout,
                            logger: template.logger))
                    let wrapped = try NIOAsyncChannel<WireMessage, WireMessage>(
                        wrappingChannelSynchronously: channel, configuration: template.asyncChannelConfiguration)
                    return (wrapped, ready.futureResult)
                }
            }
        return PeerListener(server: server, logger: template.logger, senderLimits: template.senderLimits)
    }

    private static func bootstrap(group: any EventLoopGroup, configuration: PeerConfiguration) -> ServerBootstrap {
        // SO_REUSEPORT lets hole punching connect from the listening port (`punch(host:port:localPort:...)`); the
        // kernel allows it only to sockets of the same user.
        ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.socket(SocketOptionLevel(SOL_SOCKET), SO_REUSEPORT), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.tcpNotSentLowWatermark, value: SocketOptionValue(configuration.kernelUnsentLimit))
            .childChannelOption(.recvAllocator, value: PeerConnection.receiveAllocator)
    }

    /// Accepts connections until the listener is closed, running `handler` for each one that completes
    /// its handshake, in a discarding task group (one child task per connection). Connections that fail
    /// the handshake are closed and skipped (the failure is logged by the connection); an error thrown
    /// by `handler` ends only that connection and is logged at debug level.
    public func run(_ handler: @escaping @Sendable (PeerConnection) async throws -> Void) async throws {
        let logger = self.logger
        let senderLimits = self.senderLimits
        try await server.executeThenClose { inbound in
            try await withThrowingDiscardingTaskGroup { group in
                for try await (channel, ready) in inbound {
                    group.addTask {
                        guard let selected = try? await ready.get() else {
                            try? await channel.channel.close()
                            return
                        }
                        let session = selected.session
                        do {
                            try await handler(
                                PeerConnection(
                                    session: session, channel: channel, limits: senderLimits,
                                    swarmID: selected.swarmID))
                        } catch {
                            logger.debug(
                                "peer connection handler ended with an error",
                                metadata: [
                                    "peer.fingerprint": "\(session.remoteFingerprint)", "error": "\(error)",
                                ])
                            try? await channel.channel.close()
                        }
                    }
                }
            }
        }
    }

    /// Stops listening; `run` returns after the connections it runs have ended.
    public func close() async throws {
        try await server.channel.close()
    }
}

extension ChannelOptions.Types.SocketOption {
    /// Linux `TCP_NOTSENT_LOWAT`.
    static let tcpNotSentLowWatermark = ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: 25))
}

extension ChannelOption where Self == ChannelOptions.Types.SocketOption {
    static var tcpNotSentLowWatermark: ChannelOptions.Types.SocketOption { .tcpNotSentLowWatermark }
}

extension PeerConfiguration {
    var senderLimits: PeerSender.Limits {
        .init(queue: sendQueueLimit, backlog: sendBacklogLimit, kernelUnsent: kernelUnsentLimit)
    }

    var asyncChannelConfiguration: NIOAsyncChannel<WireMessage, WireMessage>.Configuration {
        .init(backPressureStrategy: .init(lowWatermark: inboundLowWatermark, highWatermark: inboundHighWatermark))
    }
}

/// A congestion control algorithm's name as `TCP_CONGESTION` takes it: up to 15 bytes and a NUL, in 16 bytes.
struct CongestionName: Sendable {
    var storage:
        (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)

    init(bytes: [UInt8]) {
        precondition(bytes.count == 16)
        storage = (
            bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8], bytes[9],
            bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], 0
        )
    }
}
