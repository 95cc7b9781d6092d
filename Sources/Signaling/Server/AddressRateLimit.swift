import Hummingbird
import NIOCore
import Synchronization

/// A token bucket per client address (`ClientAddress` keys: an IPv4 address or an IPv6 /64) for the version log's
/// HTTP endpoints: each request takes its cost in tokens, and an address without them is answered 429. The table is
/// bounded: when it is full, an idle address (its bucket refilled) makes room, else the least recently used one.
final class AddressRateLimit: Sendable {
    private struct Entry {
        var bucket: TokenBucket
        var lastUsed: ContinuousClock.Instant
    }

    let rate: Double
    let burst: Double
    let capacity: Int
    private let table = Mutex<[String: Entry]>([:])

    init(rate: Double, burst: Double, capacity: Int = 65_536) {
        precondition(rate > 0 && burst >= 1 && capacity > 0)
        self.rate = rate
        self.burst = burst
        self.capacity = capacity
    }

    /// Takes `cost` tokens from `address`'s bucket; false (nothing taken) when it has fewer.
    func allow(_ address: String, cost: Double = 1, now: ContinuousClock.Instant = .now) -> Bool {
        table.withLock { table in
            if table[address] == nil, table.count >= capacity { Self.evict(from: &table, now: now, idle: burst / rate) }
            var entry = table[address] ?? Entry(bucket: TokenBucket(rate: rate, burst: burst, now: now), lastUsed: now)
            entry.lastUsed = now
            var probe = entry.bucket
            let allowed = probe.take(cost, now: now) == .zero
            if allowed { entry.bucket = probe }
            table[address] = entry
            return allowed
        }
    }

    /// Addresses in the table.
    var count: Int { table.withLock { $0.count } }

    private static func evict(from table: inout [String: Entry], now: ContinuousClock.Instant, idle: Double) {
        let before = table.count
        table = table.filter { (now - $0.value.lastUsed).seconds < idle }
        guard table.count == before, let oldest = table.min(by: { $0.value.lastUsed < $1.value.lastUsed }) else {
            return
        }
        table.removeValue(forKey: oldest.key)
    }
}

/// The request context of the server's HTTP routes: Hummingbird's basic context plus the client's address, which
/// the version log's rate limit is keyed by.
struct SignalRequestContext: RequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
