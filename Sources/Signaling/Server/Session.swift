import Foundation
import HummingbirdWebSocket
import Logging
import NIOCore
import SignalingProtocol
import Synchronization

/// Shared by every session of one server.
struct SessionContext: Sendable {
    let configuration: SignalServerConfiguration
    let hub: Hub
    let store: AbuseStore
    let metrics: ServerMetrics
    let globalRelayBucket: SharedTokenBucket
    /// The bound port of the second observation point (`ObservedProbeServer`), told in `welcome`; 0: none.
    let probePort = BoundPort()
}

/// A port bound after the server's context was made (0 until then, or for none).
final class BoundPort: Sendable {
    private let value = Atomic<Int>(0)
    func load() -> Int { value.load(ordering: .relaxed) }
    func store(_ port: Int) { value.store(port, ordering: .relaxed) }
}

/// Why a session ended, decided by the first of its child tasks to finish.
enum SessionExit: Sendable {
    case peerClosed
    case outboxFinished
    case violation(SignalErrorCode, String, retryAfter: Double? = nil)
}

/// One WebSocket connection: a reader that runs the protocol and a writer that drains the outbox, as two child
/// tasks; the first to end ends the other. The hello deadline is a timer on the connection's event loop.
struct Session: Sendable {
    let context: SessionContext
    let eventLoop: any EventLoop
    let remoteAddress: String
    /// The client's reflexive address, told in `welcome`.
    var observed: ObservedAddress? = nil
    let logger: Logger

    func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async {
        let metrics = context.metrics
        metrics.connections.increment()
        defer { metrics.connections.decrement() }
        var nonce = [UInt8](repeating: 0, count: 32)
        var rng = SystemRandomNumberGenerator()
        for index in nonce.indices { nonce[index] = rng.next() }
        let state = Locked(SessionStateMachine(nonce: nonce, configuration: context.configuration))
        let (outbox, continuation) = AsyncStream<Outgoing>.makeStream(
            bufferingPolicy: .bufferingOldest(context.configuration.outboxLimit))
        // Nothing is written before the client's `open` (see Message.Open); the reader sends the challenge then.

        // The hello deadline is an event-loop timer that posts into the outbox (no task sleeps for it); the state
        // machine decides at that moment whether it still matters.
        let deadline = eventLoop.scheduleTask(in: .nanoseconds(Int64(context.configuration.helloTimeout.seconds * 1e9)))
        {
            continuation.yield(.helloDeadline)
        }
        defer { deadline.cancel() }

        let exit = await withTaskGroup(of: SessionExit.self) { group -> SessionExit in
            group.addTask { await Self.writeLoop(outbox, outbound: outbound, state: state) }
            group.addTask {
                await SessionReader(
                    context: context, remoteAddress: remoteAddress, observed: observed, logger: logger, state: state,
                    outbox: continuation, outbound: outbound
                ).run(inbound)
            }
            let exit = await group.next() ?? .peerClosed
            group.cancelAll()
            return exit
        }

        let handle = state.withLock { machine -> SessionHandle? in
            let handle = machine.handle
            machine.close()
            return handle
        }
        continuation.finish()
        if let handle {
            await context.hub.unregister(handle)
            metrics.authenticated.decrement()
        }
        switch exit {
        case .violation(let code, let reason, let retryAfter):
            metrics.closedForAbuse.increment()
            logger.info("closing connection", metadata: ["error.code": "\(code.rawValue)", "reason": "\(reason)"])
            let error = Message.ErrorMessage(id: nil, code: code, message: reason, retryAfter: retryAfter)
            try? await outbound.write(.text(MessageCodec.encode(.error(error))))
            try? await outbound.close(code == .tooLarge ? .messageTooLarge : .policyViolation, reason: code.rawValue)
        case .peerClosed, .outboxFinished:
            try? await outbound.close(.normalClosure, reason: nil)
        }
    }

    /// Writes queued control messages in order until the outbox ends or asks to close.
    private static func writeLoop(
        _ outbox: AsyncStream<Outgoing>, outbound: WebSocketOutboundWriter, state: Locked<SessionStateMachine>
    ) async -> SessionExit {
        for await item in outbox {
            switch item {
            case .helloDeadline:
                if case .close = state.withLock({ $0.deadline() }) {
                    return .violation(.timeout, "no hello within the time limit")
                }
            case .message(let message):
                do { try await outbound.write(.text(MessageCodec.encode(message))) } catch { return .peerClosed }
            case .closeWithError(let code, let reason):
                let error = Message.ErrorMessage(id: nil, code: code, message: reason, retryAfter: nil)
                try? await outbound.write(.text(MessageCodec.encode(.error(error))))
                return .outboxFinished
            }
        }
        return .outboxFinished
    }
}
