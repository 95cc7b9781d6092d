/// Exponential backoff with a cap: attempt `n` (0-based) waits `min(cap, base · 2ⁿ)`.
///
/// ``delay(forAttempt:)`` is deterministic, so a policy can be tested (or replayed) without randomness. Loops that
/// many clients run at once (reconnects) should spread out with ``jitteredDelay(forAttempt:using:)``, which draws
/// uniformly from the upper half, `[d/2, d]`, so a retry never comes sooner than half the deterministic delay.
///
/// ```swift
/// let backoff = Backoff(base: .milliseconds(250), cap: .seconds(8))
/// backoff.delay(forAttempt: 0)  // 250 ms
/// backoff.delay(forAttempt: 3)  // 2 s
/// backoff.delay(forAttempt: 9)  // 8 s
/// ```
public struct Backoff: Sendable, Hashable {
    /// The delay of attempt 0.
    public var base: Duration
    /// No delay exceeds this.
    public var cap: Duration

    /// A backoff starting at `base` and doubling up to `cap`. A negative `base` or `cap` counts as zero.
    public init(base: Duration, cap: Duration) {
        self.base = max(base, .zero)
        self.cap = max(cap, .zero)
    }

    /// `min(cap, base · 2^attempt)`; a negative `attempt` counts as 0. Never overflows, however large `attempt` is.
    public func delay(forAttempt attempt: Int) -> Duration {
        var delay = min(base, cap)
        var remaining = max(attempt, 0)
        // Doubling stops at the cap, so this runs at most log2(cap / base) + 1 times and never overflows.
        while remaining > 0, delay < cap, .zero < delay {
            delay = delay > cap / 2 ? cap : delay * 2
            remaining -= 1
        }
        return delay
    }

    /// A uniformly random delay in `[d/2, d]`, `d` = ``delay(forAttempt:)``, drawn from `generator`.
    public func jitteredDelay(
        forAttempt attempt: Int, using generator: inout some RandomNumberGenerator
    ) -> Duration {
        let ceiling = delay(forAttempt: attempt)
        // The product goes through Double, so keep it inside the promised interval despite rounding.
        return min(max(ceiling * Double.random(in: 0.5...1.0, using: &generator), ceiling / 2), ceiling)
    }

    /// A uniformly random delay in `[d/2, d]`, `d` = ``delay(forAttempt:)``, from the system's generator.
    public func jitteredDelay(forAttempt attempt: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return jitteredDelay(forAttempt: attempt, using: &generator)
    }
}
