#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Rates of change with exponential decay: `add` bytes as they move, read bytes per second with `rate(at:)`.
struct RateMeter: Sendable {
    /// The decay time constant in seconds.
    var window: Double = 4
    private var value: Double = 0
    private var last: Double = 0

    mutating func add(_ bytes: Int, at now: Double) {
        decay(to: now)
        value += Double(bytes)
    }

    func rate(at now: Double) -> Double {
        let elapsed = max(now - last, 0)
        return value * exp(-elapsed / window) / window
    }

    private mutating func decay(to now: Double) {
        let elapsed = max(now - last, 0)
        value *= exp(-elapsed / window)
        last = now
    }
}

extension Duration {
    /// The duration in seconds.
    var secondsValue: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}
