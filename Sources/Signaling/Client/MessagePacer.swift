/// Hands out sending turns at most `rate` per second after a burst of `burst`: a token bucket whose turns are reserved
/// in call order (a caller waits until its turn), so paced messages keep their order. No I/O, no clock of its own.
struct MessagePacer: Sendable {
    let interval: Duration
    let burst: Int
    /// The earliest turn not yet handed out, `burst` intervals ahead of it being the bucket's capacity.
    private var next: ContinuousClock.Instant?

    init(rate: Double, burst: Double) {
        interval = .nanoseconds(Int64(1e9 / max(rate, 0.001)))
        self.burst = max(1, Int(burst))
    }

    /// The instant at which the caller may send, for a call at `now`.
    mutating func reserve(at now: ContinuousClock.Instant) -> ContinuousClock.Instant {
        // A bucket full after idling: the next turn is no earlier than `burst` intervals before now.
        let floor = now - interval * (burst - 1)
        let turn = max(next ?? floor, floor)
        next = turn + interval
        return max(turn, now)
    }
}
