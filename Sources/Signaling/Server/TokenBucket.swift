import Synchronization

/// A token bucket that may run into debt: `take` always succeeds and says how long the caller must wait so the
/// long-run rate holds. Callers wait before acting, which pauses their reader instead of buffering.
struct TokenBucket: Sendable {
    let rate: Double
    let burst: Double
    private var tokens: Double
    private var last: ContinuousClock.Instant

    init(rate: Double, burst: Double, now: ContinuousClock.Instant = .now) {
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.last = now
    }

    private mutating func refill(now: ContinuousClock.Instant) {
        let elapsed = (now - last).seconds
        if elapsed > 0 {
            tokens = min(burst, tokens + elapsed * rate)
            last = now
        }
    }

    /// Takes `amount` tokens and returns the wait (zero when the bucket had them).
    mutating func take(_ amount: Double, now: ContinuousClock.Instant = .now) -> Duration {
        refill(now: now)
        tokens -= amount
        guard tokens < 0 else { return .zero }
        return .nanoseconds(Int64((-tokens / rate) * 1e9))
    }

    /// Takes one token if there is one; `false` when the bucket is empty (nothing taken).
    mutating func tryTake(now: ContinuousClock.Instant = .now) -> Bool {
        refill(now: now)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}

/// A ``TokenBucket`` shared between tasks.
final class SharedTokenBucket: Sendable {
    private let bucket: Mutex<TokenBucket>

    init(rate: Double, burst: Double) {
        bucket = Mutex(TokenBucket(rate: rate, burst: burst))
    }

    func take(_ amount: Int) -> Duration {
        bucket.withLock { $0.take(Double(amount)) }
    }
}

/// A value behind a lock, shareable between the child tasks of one connection.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) {
        mutex = Mutex(value)
    }

    func withLock<Result: Sendable>(_ body: (inout sending Value) -> sending Result) -> Result {
        mutex.withLock(body)
    }
}
