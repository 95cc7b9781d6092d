import HummingbirdCore
import Logging
import NIOCore
import SignalingProtocol

/// What every connection's guard shares: the limiter, the request deadline, the trusted proxies and the metrics.
struct ConnectionGuards: Sendable {
    let limiter: ConnectionLimiter
    let requestTimeout: TimeAmount
    let trustedProxies: Set<String>
    let metrics: ServerMetrics
}

/// The first handler of every accepted connection, in front of TLS and HTTP. It takes the connection's slot in the
/// ``ConnectionLimiter`` (closing it at once over a cap) and gives it back when the connection closes; and it closes a
/// connection that has not finished its TLS handshake and sent a whole HTTP request within the request timeout
/// (idle sockets and half-sent headers). After that the connection belongs to one of two other clocks: Hummingbird's
/// idle timeout for plain HTTP keep-alive (see ``HTTPServingMarker``), or the session's hello deadline after a
/// WebSocket upgrade (``SignalServer`` calls ``upgrade(forwardedFor:)``).
final class ConnectionGuardHandler: ChannelInboundHandler, RemovableChannelHandler {
    /// Raw bytes from the socket, passed on untouched.
    typealias InboundIn = ByteBuffer

    private enum Phase {
        case fresh
        case awaitingRequest(slot: String?, deadline: Scheduled<Void>)
        case served(slot: String?)
        case closed
    }

    private let guards: ConnectionGuards
    private var phase = Phase.fresh
    /// The client address of this connection: the socket's peer, or what a trusted proxy forwarded.
    private(set) var clientAddress = "unknown"
    /// Where the connection comes from as the server sees it (the client's reflexive address, told in `welcome`):
    /// the socket's peer address and port, or the address a trusted proxy forwarded (no port).
    private(set) var observed: ObservedAddress?
    private var peerIsTrustedProxy = false

    init(guards: ConnectionGuards) {
        self.guards = guards
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { activate(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        activate(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish()
    }

    private func activate(_ context: ChannelHandlerContext) {
        guard case .fresh = phase else { return }
        let peer = context.channel.remoteAddress
        clientAddress = ClientAddress.key(of: peer)
        observed = ClientAddress.observed(peer, port: true)
        peerIsTrustedProxy = peer?.ipAddress.map { guards.trustedProxies.contains($0) } ?? false
        let slot = peerIsTrustedProxy ? nil : clientAddress
        guard guards.limiter.admit(slot) else {
            phase = .closed
            guards.metrics.refusedConnections.increment()
            context.close(promise: nil)
            return
        }
        let deadline = context.eventLoop.assumeIsolated().scheduleTask(in: guards.requestTimeout) {
            self.requestDeadlinePassed(context)
        }
        phase = .awaitingRequest(slot: slot, deadline: deadline)
    }

    private func requestDeadlinePassed(_ context: ChannelHandlerContext) {
        guard case .awaitingRequest = phase else { return }
        guards.metrics.requestTimeouts.increment()
        context.close(promise: nil)
    }

    private func finish() {
        switch phase {
        case .awaitingRequest(let slot, let deadline):
            deadline.cancel()
            guards.limiter.release(slot)
        case .served(let slot):
            guards.limiter.release(slot)
        case .fresh, .closed:
            break
        }
        phase = .closed
    }

    /// A whole plain HTTP request arrived: Hummingbird's idle timeout takes over.
    func servingHTTP() {
        guard case .awaitingRequest(let slot, let deadline) = phase else { return }
        deadline.cancel()
        phase = .served(slot: slot)
    }

    /// A WebSocket upgrade request arrived. From a trusted proxy, the right-most address of `X-Forwarded-For` that
    /// is not itself a trusted proxy becomes the client address and is counted against its cap. Returns the client
    /// address, or `nil` to refuse the upgrade (the forwarded client is at its connection cap).
    func upgrade(forwardedFor: [String]) -> String? {
        guard case .awaitingRequest(var slot, let deadline) = phase else { return nil }
        deadline.cancel()
        if peerIsTrustedProxy, slot == nil,
            let client = Self.forwardedClient(forwardedFor, trusted: guards.trustedProxies)
        {
            guard guards.limiter.assign(client) else {
                guards.metrics.refusedConnections.increment()
                phase = .served(slot: nil)
                return nil
            }
            slot = client
            clientAddress = client
            observed = Self.forwardedAddress(forwardedFor, trusted: guards.trustedProxies)
        }
        phase = .served(slot: slot)
        return clientAddress
    }

    /// The client named by `X-Forwarded-For` values (each a comma-separated list, the nearest hop last): the
    /// right-most entry that is not a trusted proxy. Entries left of it were written by the client and are not
    /// believed. At most 32 entries are read.
    static func forwardedClient(_ values: [String], trusted: Set<String>) -> String? {
        forwardedSocketAddress(values, trusted: trusted).map { ClientAddress.key(of: $0) }
    }

    /// The whole address of the client ``forwardedClient(_:trusted:)`` names (not its /64 for IPv6), without a port.
    static func forwardedAddress(_ values: [String], trusted: Set<String>) -> ObservedAddress? {
        ClientAddress.observed(forwardedSocketAddress(values, trusted: trusted), port: false)
    }

    private static func forwardedSocketAddress(_ values: [String], trusted: Set<String>) -> SocketAddress? {
        let entries = values.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }.suffix(32)
        for entry in entries.reversed() {
            guard let address = ClientAddress.parse(String(entry)) else { return nil }
            if let ip = address.ipAddress, trusted.contains(ip) { continue }
            return address
        }
        return nil
    }
}

/// Added by Hummingbird to a connection that did not ask for a WebSocket upgrade, once its first request head is
/// read: tells the connection's guard that a whole request arrived.
final class HTTPServingMarker: ChannelInboundHandler, RemovableChannelHandler {
    /// Never unwrapped: every read and event passes through unchanged (NIO requires a direction).
    typealias InboundIn = NIOAny

    func handlerAdded(context: ChannelHandlerContext) {
        (try? context.pipeline.syncOperations.handler(type: ConnectionGuardHandler.self))?.servingHTTP()
    }
}

/// A Hummingbird child channel with a ``ConnectionGuardHandler`` in front of everything `base` sets up (TLS
/// included).
struct GuardedChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let guards: ConnectionGuards

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let guards = self.guards
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ConnectionGuardHandler(guards: guards), position: .first)
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
