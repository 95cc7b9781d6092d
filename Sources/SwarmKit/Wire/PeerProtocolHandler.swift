internal import Logging
internal import NIOCore

/// The top of the peer pipeline: sends `hello` after the handshake, checks the peer's `hello`,
/// enforces the protocol rules of docs/protocol.md §5.3 and §6, answers idleness (keep-alive when this
/// side is quiet, goodbye `idle-timeout` when the peer is), and turns every violation into
/// goodbye + log line + close. It never lets a peer's bytes crash the process.
final class PeerProtocolHandler: ChannelDuplexHandler {
    typealias InboundIn = WireMessage
    typealias InboundOut = WireMessage
    typealias OutboundIn = WireMessage
    typealias OutboundOut = WireMessage

    private var machine: PeerSessionStateMachine
    private let localHello: (_ deviceKey: [UInt8]) -> Hello
    private let localDeviceKey: [UInt8]
    private let ready: EventLoopPromise<PeerSession>
    /// The ready promise has been completed (either way).
    private var readyDone = false
    /// The application has the connection: errors and goodbyes go to it from now on.
    private var sessionOpen = false
    private var logger: Logger
    /// How long a goodbye may take to leave before the connection is closed anyway.
    private let goodbyeGrace: TimeAmount = .seconds(2)
    private let idleTimeout: TimeAmount
    private let keepAliveInterval: TimeAmount
    private var lastRead = NIODeadline.distantPast
    private var lastWrite = NIODeadline.distantPast
    private var idleCheck: Scheduled<Void>?

    init(
        localDeviceKey: [UInt8], listenPort: UInt16, capabilities: UInt64 = 0, enforceAnnouncements: Bool,
        isInitiator: Bool = true, idleTimeout: TimeAmount, keepAliveInterval: TimeAmount,
        ready: EventLoopPromise<PeerSession>, logger: Logger
    ) {
        self.idleTimeout = idleTimeout
        self.keepAliveInterval = keepAliveInterval
        self.machine = PeerSessionStateMachine(
            enforceAnnouncements: enforceAnnouncements, isInitiator: isInitiator,
            offersChannels: capabilities & Hello.Capability.channels != 0)
        self.localDeviceKey = localDeviceKey
        self.localHello = { Hello(capabilities: capabilities, deviceKey: $0, listenPort: listenPort) }
        self.ready = ready
        self.logger = logger
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let completed = event as? NoiseHandshakeCompleted {
            logger[metadataKey: "peer.fingerprint"] = "\(DeviceIdentity.fingerprint(of: completed.remoteDeviceKey))"
            machine.handshakeCompleted(completed)
            lastRead = context.eventLoop.now
            send(context: context, .hello(localHello(localDeviceKey)), promise: nil)
            context.flush()
            scheduleIdleCheck(context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = Self.unwrapInboundIn(data)
        lastRead = context.eventLoop.now
        switch machine.receive(message) {
        case .forward(let message):
            context.fireChannelRead(Self.wrapInboundOut(message))
        case .drop:
            break
        case .ready(let session):
            logger.debug("peer ready", metadata: ["peer.listen_port": "\(session.remoteHello.listenPort)"])
            readyDone = true
            sessionOpen = true
            ready.succeed(session)
        case .violation(let error):
            violation(context: context, error)
        case .goodbye(let reason):
            logger.info("peer said goodbye", metadata: ["goodbye.reason": "\(reason)"])
            if sessionOpen {
                context.fireChannelRead(Self.wrapInboundOut(.goodbye(reason)))
            } else {
                failReady(PeerConnectionError.peerSaidGoodbye(reason))
            }
            context.close(promise: nil)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        send(context: context, Self.unwrapOutboundIn(data), promise: promise)
    }

    private func send(context: ChannelHandlerContext, _ message: WireMessage, promise: EventLoopPromise<Void>?) {
        lastWrite = context.eventLoop.now
        switch machine.willSend(message) {
        case .drop:
            // On a channel that has ended meanwhile: as if written (the sender counts it out).
            promise?.succeed()
        case .write(let message, let switchTo, let closeAfter):
            if let switchTo { context.write(Self.wrapOutboundOut(switchTo), promise: nil) }
            guard closeAfter else { return context.write(Self.wrapOutboundOut(message), promise: promise) }
            // An outbound goodbye: close once it has been written.
            let written = promise ?? context.eventLoop.makePromise()
            context.writeAndFlush(Self.wrapOutboundOut(message), promise: written)
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            written.futureResult.whenComplete { _ in loopBound.value.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let wire = error as? WireProtocolError {
            violation(context: context, wire)
        } else if error is NoiseError || error is PeerConnectionError {
            // Handshake failures: NoiseHandler has logged and is closing; no goodbye without keys.
            failReady(error)
            if sessionOpen { context.fireErrorCaught(error) }
        } else {
            logger.info("peer connection error", metadata: ["error": "\(error)"])
            failReady(error)
            if sessionOpen { context.fireErrorCaught(error) }
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        failReady(
            machine.transportEstablished
                ? PeerConnectionError.closedBeforeHello : PeerConnectionError.closedDuringHandshake)
        context.fireChannelInactive()
    }

    /// Goodbye with the error's reason, a log line, then close (after the goodbye is written, or after
    /// `goodbyeGrace` if the peer does not read).
    private func violation(context: ChannelHandlerContext, _ error: WireProtocolError) {
        guard !machine.isClosing else { return }
        let canSayGoodbye = machine.close()
        logger.warning(
            "peer protocol violation",
            metadata: [
                "goodbye.reason": "\(error.reason)", "error.detail": "\(error.detail)",
            ])
        failReady(error)
        if sessionOpen { context.fireErrorCaught(error) }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        guard canSayGoodbye else { return context.close(promise: nil) }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(Self.wrapOutboundOut(.goodbye(error.reason)), promise: written)
        let fallback = context.eventLoop.scheduleTask(in: goodbyeGrace) { loopBound.value.close(promise: nil) }
        written.futureResult.whenComplete { _ in
            fallback.cancel()
            loopBound.value.close(promise: nil)
        }
    }

    /// Idleness, on the event loop's clock (so virtual time works in tests): nothing read for
    /// `idleTimeout` is a goodbye `idle-timeout`; nothing written for `keepAliveInterval` sends a keep-alive.
    private func scheduleIdleCheck(context: ChannelHandlerContext) {
        let next = min(lastRead + idleTimeout, lastWrite + keepAliveInterval)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        idleCheck = context.eventLoop.scheduleTask(deadline: next) {
            handler.value.idleCheckFired(context: loopBound.value)
        }
    }

    private func idleCheckFired(context: ChannelHandlerContext) {
        guard !machine.isClosing, context.channel.isActive else { return }
        let now = context.eventLoop.now
        if now >= lastRead + idleTimeout {
            return violation(
                context: context, WireProtocolError(.idleTimeout, "nothing received within the idle timeout"))
        }
        if now >= lastWrite + keepAliveInterval {
            send(context: context, .keepAlive, promise: nil)
            context.flush()
        }
        scheduleIdleCheck(context: context)
    }

    private func failReady(_ error: any Error) {
        guard !readyDone else { return }
        readyDone = true
        ready.fail(error)
    }
}
