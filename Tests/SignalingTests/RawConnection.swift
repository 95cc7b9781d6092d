import HummingbirdWSClient
import Logging
import NIOCore
import NIOWebSocket
import Synchronization

@testable import SignalingClient
@testable import SignalingProtocol
@testable import SignalingServer

/// A hand-driven WebSocket connection that stays open between steps, so a test can hold many at once (at the
/// challenge, say) and drive them one by one. Incoming frames wait in a stream; ``close()`` or the server's close
/// ends it.
final class RawConnection: Sendable {
    enum Incoming: Sendable {
        case message(Message)
        case binary(ByteBuffer)
    }

    private let inbox = Inbox()
    private let outgoing: AsyncStream<WebSocketOutboundWriter.OutboundFrame>.Continuation
    private let task: Task<WebSocketCloseFrame?, any Error>

    /// Connects and sends `open`; with `forwardedFor`, the upgrade request carries that `X-Forwarded-For`.
    init(url: String, forwardedFor: String? = nil) {
        let inbox = self.inbox
        let (outgoingFrames, outgoing) = AsyncStream<WebSocketOutboundWriter.OutboundFrame>.makeStream()
        var configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 20)
        if let forwardedFor { configuration.additionalHeaders = [.init("X-Forwarded-For")!: forwardedFor] }
        self.outgoing = outgoing
        let clientConfiguration = configuration
        task = Task {
            defer { inbox.finish() }
            return try await WebSocketClient.connect(
                url: url, configuration: clientConfiguration, logger: makeTestLogger("test.raw")
            ) { inbound, outbound, _ in
                try await outbound.write(.text(MessageCodec.encode(.open(.init(version: Signaling.protocolVersion)))))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await frame in outgoingFrames { try await outbound.write(frame) }
                    }
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        switch message {
                        case .text(let text):
                            if let decoded = try? MessageCodec.decode(text, maxBytes: 1 << 20) {
                                inbox.add(.message(decoded))
                            }
                        case .binary(let buffer):
                            inbox.add(.binary(buffer))
                        }
                    }
                    group.cancelAll()
                }
            }
        }
    }

    deinit {
        outgoing.finish()
        task.cancel()
    }

    func send(_ message: Message) {
        outgoing.yield(.text(MessageCodec.encode(message)))
    }

    func sendBinary(_ bytes: [UInt8]) {
        outgoing.yield(.binary(ByteBuffer(bytes: bytes)))
    }

    /// The next frame from the server, `nil` once the connection has closed; fails after `seconds`.
    func next(_ what: String, seconds: Double = 15) async throws -> Incoming? {
        let inbox = self.inbox
        return try await withTimeout(what, seconds: seconds) { try await inbox.next() }
    }

    /// The next text message (binary frames are skipped).
    func nextMessage(_ what: String, seconds: Double = 15) async throws -> Message? {
        while let frame = try await next(what, seconds: seconds) {
            if case .message(let message) = frame { return message }
        }
        return nil
    }

    /// Waits for the challenge that answers `open`.
    func challenge() async throws -> Message.Challenge {
        guard case .challenge(let challenge)? = try await nextMessage("challenge") else {
            throw TimedOut(what: "a challenge (the server answered something else)")
        }
        return challenge
    }

    /// Stops sending and waits for the connection to end.
    func close() async {
        outgoing.finish()
        task.cancel()
        _ = try? await task.value
    }
}

extension Message {
    var errorCode: SignalErrorCode? { if case .error(let error) = self { error.code } else { nil } }
}

/// Frames received and not yet taken, and the one reader waiting for the next.
private final class Inbox: Sendable {
    private struct State {
        var items: [RawConnection.Incoming] = []
        var finished = false
        var waiter: CheckedContinuation<RawConnection.Incoming?, any Error>?
    }

    private let state = Mutex(State())

    func add(_ item: RawConnection.Incoming) {
        let waiter = state.withLock { state -> CheckedContinuation<RawConnection.Incoming?, any Error>? in
            guard let waiter = state.waiter else {
                state.items.append(item)
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume(returning: item)
    }

    func finish() {
        let waiter = state.withLock { state in
            state.finished = true
            return state.waiter.take()
        }
        waiter?.resume(returning: nil)
    }

    /// The next frame, or `nil` after the end; throws `CancellationError` when cancelled while waiting.
    func next() async throws -> RawConnection.Incoming? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                enum Now { case item(RawConnection.Incoming?), cancelled, wait }
                let now = state.withLock { state -> Now in
                    if Task.isCancelled { return .cancelled }
                    if !state.items.isEmpty { return .item(state.items.removeFirst()) }
                    if state.finished { return .item(nil) }
                    state.waiter = continuation
                    return .wait
                }
                switch now {
                case .item(let item): continuation.resume(returning: item)
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .wait: break
                }
            }
        } onCancel: {
            state.withLock { $0.waiter.take() }?.resume(throwing: CancellationError())
        }
    }
}
