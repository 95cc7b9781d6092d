import Foundation

/// A transfer rate over caller-given times: ``add(_:at:)`` bytes as they move, read bytes per second with
/// ``rate(at:)``.
///
/// The meter keeps one number, decayed exponentially with time constant ``window``: a burst counts fully at first
/// and fades over a few windows, and a steady flow of `r` bytes per second reads `r` once it has run for a few
/// windows. It reads no clock: times are seconds on any monotonic scale (see ``TimeSource``), and a time earlier
/// than the last one seen counts as no time passed.
public struct RateMeter: Sendable, Hashable {
    /// The decay time constant, in seconds.
    public let window: Double
    private var value: Double = 0
    private var last: Double = 0

    /// A meter with decay time constant `window` seconds (default 4); a window under 1 ms is taken as 1 ms.
    public init(window: Double = 4) {
        self.window = max(window, 0.001)
    }

    /// Counts `bytes` moved at time `now` (seconds).
    public mutating func add(_ bytes: Int, at now: Double) {
        let elapsed = max(now - last, 0)
        value = value * decay(elapsed) + Double(bytes)
        last = max(now, last)
    }

    /// Bytes per second at time `now` (seconds).
    public func rate(at now: Double) -> Double {
        value * decay(max(now - last, 0)) / window
    }

    private func decay(_ elapsed: Double) -> Double {
        exp(-elapsed / window)
    }
}
