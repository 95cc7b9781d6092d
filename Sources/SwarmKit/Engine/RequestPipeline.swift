/// How many requests to keep outstanding at one source, sized from its measured rate and round-trip time (a
/// bandwidth-delay product) rather than a constant. No I/O: times come in as seconds from any monotonic clock.
///
/// - rate: an exponentially weighted average of bytes per second over arrivals;
/// - round-trip time: the minimum over recent samples of (request to arrival) minus the time the bytes themselves took
///   at the measured rate, which removes queueing behind earlier requests;
/// - depth = ceil(rate × (rtt + margin) / chunk size) + 1, clamped to `minDepth...maxDepth`: enough requests in flight
///   to keep the link busy for one round trip, plus one being transmitted.
public struct RequestPipeline: Sendable {
    public var minDepth: Int
    public var maxDepth: Int
    /// Extra time covered beyond one round trip (scheduling jitter on the peer).
    public var margin: Double
    /// Bytes per second, or nil before the first arrival.
    public private(set) var rate: Double?
    /// Seconds, or nil before the first sample.
    public private(set) var roundTrip: Double?
    private var lastArrival: Double?
    private var samples: [Double] = []

    public init(minDepth: Int = 2, maxDepth: Int = 64, margin: Double = 0.05) {
        self.minDepth = minDepth
        self.maxDepth = maxDepth
        self.margin = margin
    }

    /// A requested chunk of `bytes` arrived at `now`; it was requested at `requestedAt`.
    public mutating func arrived(bytes: Int, requestedAt: Double, now: Double) {
        let elapsed = max(now - requestedAt, 1e-6)
        // While the pipe is full, arrivals are back to back, so bytes over the gap since the previous arrival is the
        // rate; after an idle gap, the request's own elapsed time is the better bound.
        let gap = lastArrival.map { min(now - $0, elapsed) } ?? elapsed
        let sample = Double(bytes) / max(gap, 1e-6)
        rate = rate.map { 0.8 * $0 + 0.2 * sample } ?? sample
        lastArrival = now
        let transfer = Double(bytes) / (rate ?? sample)
        samples.append(max(elapsed - transfer, 0))
        if samples.count > 16 { samples.removeFirst(samples.count - 16) }
        roundTrip = samples.min()
    }

    /// Requests to keep outstanding for chunks of about `chunkSize` bytes.
    public func depth(chunkSize: Int) -> Int {
        guard let rate, let roundTrip else { return minDepth }
        let inFlightBytes = rate * (roundTrip + margin)
        let depth = Int((inFlightBytes / Double(max(chunkSize, 1))).rounded(.up)) + 1
        return min(max(depth, minDepth), maxDepth)
    }

    /// Whether a request of `bytes` made at `requestedAt`, with `queuedAhead` bytes requested before it, is so late
    /// at `now` that it should be given up and asked elsewhere (a slow or stalled peer must not hold back the finish).
    public func isOverdue(bytes: Int, queuedAhead: Int, requestedAt: Double, now: Double) -> Bool {
        now > overdueAt(bytes: bytes, queuedAhead: queuedAhead, requestedAt: requestedAt)
    }

    /// The time after which such a request is overdue (`isOverdue`), as the rate stands now.
    public func overdueAt(bytes: Int, queuedAhead: Int, requestedAt: Double) -> Double {
        guard let rate, rate > 0 else { return requestedAt + 30 }
        let expected = Double(bytes + queuedAhead) / rate + (roundTrip ?? 0)
        return requestedAt + 4 * expected + 2
    }
}
