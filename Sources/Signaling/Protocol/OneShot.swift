import Synchronization

// Not protocol, but shared by the client (certificate pinning) and the server (the bound port), and by the tests:
// it lives here, the one module both link, so that a client never links the server to get it.

/// A value that becomes available once; waiters suspend until then, until it fails, or until they are cancelled.
package final class OneShot<Value: Sendable>: Sendable {
    private enum State {
        case waiting([UInt64: CheckedContinuation<Value, any Error>], next: UInt64)
        case done(Result<Value, any Error>)
    }

    private let state = Mutex(State.waiting([:], next: 0))

    /// A value of nothing yet.
    package init() {}

    /// The value, once fulfilled; throws the failure, or `CancellationError` if the calling task is cancelled.
    package func value() async throws -> Value {
        let token = state.withLock { state -> UInt64 in
            guard case .waiting(let waiters, let next) = state else { return 0 }
            state = .waiting(waiters, next: next + 1)
            return next + 1
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let ready: Result<Value, any Error>? = state.withLock { state in
                    switch state {
                    case .waiting(var waiters, let next):
                        if Task.isCancelled { return .failure(CancellationError()) }
                        waiters[token] = continuation
                        state = .waiting(waiters, next: next)
                        return nil
                    case .done(let result):
                        return result
                    }
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Value, any Error>? in
                guard case .waiting(var waiters, let next) = state else { return nil }
                let waiter = waiters.removeValue(forKey: token)
                state = .waiting(waiters, next: next)
                return waiter
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// The value, or nil when `timeout` passes first (the one-shot itself stays as it is, for other waiters); throws
    /// the failure, or `CancellationError` if the calling task is cancelled.
    package func value(timeout: Duration) async throws -> Value? {
        try await withThrowingTaskGroup(of: Value?.self) { group in
            group.addTask { try await self.value() }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }

    /// Makes `value` available to every waiter, present and future; ignored after the first completion.
    package func fulfil(_ value: Value) { complete(.success(value)) }
    /// Fails every waiter, present and future, with `error`; ignored after the first completion.
    package func fail(_ error: any Error) { complete(.failure(error)) }

    private func complete(_ result: Result<Value, any Error>) {
        let waiters = state.withLock { state -> [CheckedContinuation<Value, any Error>] in
            guard case .waiting(let waiters, _) = state else { return [] }
            state = .done(result)
            return Array(waiters.values)
        }
        for waiter in waiters { waiter.resume(with: result) }
    }
}
