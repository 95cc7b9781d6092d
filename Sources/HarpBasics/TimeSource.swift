import Synchronization

/// A monotonic clock read as seconds: what code that takes time as an input (meters, schedulers, state machines)
/// asks for "now", so a test can hand it a ``ManualClock`` instead of real time.
///
/// Values only mean something relative to each other from the same source: never compare them across sources or
/// processes, and never treat one as a date.
public protocol TimeSource: Sendable {
    /// Seconds since an arbitrary origin fixed for this source; never decreases.
    var now: Double { get }
}

/// Real time from `ContinuousClock`, in seconds since the source was made. Monotonic; keeps counting while the
/// machine sleeps.
public struct MonotonicClock: TimeSource {
    private let origin: ContinuousClock.Instant

    /// A clock that reads 0 now.
    public init() {
        origin = ContinuousClock.now
    }

    public var now: Double {
        seconds(of: ContinuousClock.now)
    }

    /// `instant` on this clock's scale, in seconds (negative before the clock was made).
    public func seconds(of instant: ContinuousClock.Instant) -> Double {
        (instant - origin) / .seconds(1)
    }

    /// The `ContinuousClock` instant that reads `seconds` on this clock, for sleeping until a computed deadline.
    public func instant(atSeconds seconds: Double) -> ContinuousClock.Instant {
        origin + .seconds(seconds)
    }
}

/// A clock that moves only when told: for tests and simulations, where time is an input.
///
/// A class, so that the code under test and the test share one clock; its reading sits behind a `Mutex`, which
/// makes it safe to read and move from any task.
public final class ManualClock: TimeSource {
    private let seconds: Mutex<Double>

    /// A clock that reads `start` seconds.
    public init(start: Double = 0) {
        seconds = Mutex(start)
    }

    public var now: Double {
        seconds.withLock { $0 }
    }

    /// Moves the clock forward by `interval` seconds; a negative interval is a programmer error.
    public func advance(by interval: Double) {
        precondition(interval >= 0, "a monotonic clock does not go back")
        seconds.withLock { $0 += interval }
    }

    /// Moves the clock forward by `duration`.
    public func advance(by duration: Duration) {
        advance(by: duration / .seconds(1))
    }

    /// Sets the clock to `time` seconds, which must not be earlier than its reading.
    public func set(to time: Double) {
        seconds.withLock {
            precondition(time >= $0, "a monotonic clock does not go back")
            $0 = time
        }
    }
}
