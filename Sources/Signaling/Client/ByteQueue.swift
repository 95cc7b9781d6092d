import NIOCore
import Synchronization

/// A bounded queue of byte buffers between the client's socket reader and one relay stream's consumer. When more
/// than `limit` bytes wait, the reader is suspended (which stops reading the socket) instead of buffering more.
final class ByteQueue: Sendable {
    private struct State {
        var buffers: [ByteBuffer] = []
        var bytes = 0
        var finished = false
        var consumer: CheckedContinuation<ByteBuffer?, Never>?
        var producers: [CheckedContinuation<Void, Never>] = []
    }

    private let limit: Int
    private let state = Mutex(State())

    init(limit: Int) {
        self.limit = limit
    }

    /// Adds bytes; suspends while the queue is over its limit. Bytes pushed after `finish` are dropped.
    func push(_ buffer: ByteBuffer) async {
        enum Step { case handedOver(CheckedContinuation<ByteBuffer?, Never>), queued(full: Bool), dropped }
        let step = state.withLock { state -> Step in
            if state.finished { return .dropped }
            if let consumer = state.consumer {
                state.consumer = nil
                return .handedOver(consumer)
            }
            state.buffers.append(buffer)
            state.bytes += buffer.readableBytes
            return .queued(full: state.bytes > limit)
        }
        switch step {
        case .handedOver(let consumer): consumer.resume(returning: buffer)
        case .dropped, .queued(full: false): return
        case .queued(full: true):
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let resumeNow = state.withLock { state -> Bool in
                        if state.finished || state.bytes <= limit { return true }
                        state.producers.append(continuation)
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                self.releaseProducers()
            }
        }
    }

    /// The next buffer, or `nil` once finished and drained (or when the waiting task is cancelled).
    func next() async -> ByteBuffer? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                enum Step { case value(ByteBuffer?, [CheckedContinuation<Void, Never>]), wait }
                let step = state.withLock { state -> Step in
                    if !state.buffers.isEmpty {
                        let buffer = state.buffers.removeFirst()
                        state.bytes -= buffer.readableBytes
                        var released: [CheckedContinuation<Void, Never>] = []
                        if state.bytes <= limit { swap(&released, &state.producers) }
                        return .value(buffer, released)
                    }
                    if state.finished { return .value(nil, []) }
                    state.consumer = continuation
                    return .wait
                }
                if case .value(let buffer, let released) = step {
                    for producer in released { producer.resume() }
                    continuation.resume(returning: buffer)
                }
            }
        } onCancel: {
            let consumer = state.withLock { state -> CheckedContinuation<ByteBuffer?, Never>? in
                defer { state.consumer = nil }
                return state.consumer
            }
            consumer?.resume(returning: nil)
        }
    }

    /// Ends the queue: the consumer drains what is queued, then sees the end; waiting producers go on.
    func finish() {
        let consumer = state.withLock { state -> CheckedContinuation<ByteBuffer?, Never>? in
            state.finished = true
            defer { state.consumer = nil }
            return state.consumer
        }
        consumer?.resume(returning: nil)
        releaseProducers()
    }

    private func releaseProducers() {
        let producers = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            defer { state.producers = [] }
            return state.producers
        }
        for producer in producers { producer.resume() }
    }
}
