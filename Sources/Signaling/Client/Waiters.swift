import Synchronization

/// Tasks waiting for a value under a key (a swarm's join, a request id), resumed by whoever receives the answer.
///
/// A waiter is registered synchronously (``register(_:)``) before the request goes out, so an answer that
/// arrives before the task starts waiting (``wait(_:)``) is kept for it rather than lost. Cancelling a waiting
/// task resumes it with `CancellationError` and forgets it.
final class Waiters<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private enum Slot {
        case registered(Key)
        case waiting(Key, CheckedContinuation<Value, any Error>)
        case resolved(Result<Value, any Error>)
        case cancelled
    }

    private struct State {
        var nextToken: UInt64 = 0
        var slots: [UInt64: Slot] = [:]
    }

    private let state = Mutex(State())

    /// Registers interest in `key`; pass the token to ``wait(_:)``.
    func register(_ key: Key) -> UInt64 {
        state.withLock { state in
            state.nextToken += 1
            state.slots[state.nextToken] = .registered(key)
            return state.nextToken
        }
    }

    /// Waits for the answer registered under `token`.
    func wait(_ token: UInt64) async throws -> Value {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let ready = state.withLock { state -> Result<Value, any Error>? in
                    switch state.slots[token] {
                    case .registered(let key):
                        state.slots[token] = .waiting(key, continuation)
                        return nil
                    case .resolved(let result):
                        state.slots[token] = nil
                        return result
                    case .cancelled, .waiting, nil:
                        state.slots[token] = nil
                        return .failure(CancellationError())
                    }
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            let continuation = state.withLock { state -> CheckedContinuation<Value, any Error>? in
                switch state.slots[token] {
                case .waiting(_, let continuation):
                    state.slots[token] = nil
                    return continuation
                case .registered:
                    state.slots[token] = .cancelled
                    return nil
                case .resolved, .cancelled, nil:
                    return nil
                }
            }
            continuation?.resume(throwing: CancellationError())
        }
    }

    /// Answers every waiter registered under `key`.
    func resume(_ key: Key, with result: Result<Value, any Error>) {
        resolve(result) { $0 == key }
    }

    /// Answers every waiter with an error.
    func failAll(_ error: any Error) {
        resolve(.failure(error)) { _ in true }
    }

    private func resolve(_ result: Result<Value, any Error>, where matches: (Key) -> Bool) {
        let continuations = state.withLock { state -> [CheckedContinuation<Value, any Error>] in
            var ready: [CheckedContinuation<Value, any Error>] = []
            for (token, slot) in state.slots {
                switch slot {
                case .registered(let key) where matches(key):
                    state.slots[token] = .resolved(result)
                case .waiting(let key, let continuation) where matches(key):
                    state.slots[token] = nil
                    ready.append(continuation)
                default:
                    break
                }
            }
            return ready
        }
        for continuation in continuations { continuation.resume(with: result) }
    }
}
