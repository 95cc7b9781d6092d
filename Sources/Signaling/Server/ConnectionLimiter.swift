import Synchronization

/// Counts open TCP connections per client address (``ClientAddress``) and in total, and refuses those over the caps.
/// Every entry goes when its address's last connection closes, so the table holds only addresses connected now.
final class ConnectionLimiter: Sendable {
    private struct State {
        var total = 0
        var perAddress: [String: Int] = [:]
    }

    let maxTotal: Int
    let maxPerAddress: Int
    private let state = Mutex(State())

    init(maxTotal: Int, maxPerAddress: Int) {
        self.maxTotal = maxTotal
        self.maxPerAddress = maxPerAddress
    }

    /// Takes a slot for a new connection: in the total, and for `address` unless it is `nil` (a trusted proxy,
    /// counted per address only once its forwarded header names the client). `false` when a cap is reached.
    func admit(_ address: String?) -> Bool {
        state.withLock { state in
            guard state.total < maxTotal else { return false }
            if let address {
                let count = state.perAddress[address, default: 0]
                guard count < maxPerAddress else { return false }
                state.perAddress[address] = count + 1
            }
            state.total += 1
            return true
        }
    }

    /// Counts an admitted proxy connection against the client address its proxy named; `false` over the cap
    /// (the connection keeps its slot in the total until it closes).
    func assign(_ address: String) -> Bool {
        state.withLock { state in
            let count = state.perAddress[address, default: 0]
            guard count < maxPerAddress else { return false }
            state.perAddress[address] = count + 1
            return true
        }
    }

    /// Gives back what ``admit(_:)`` and ``assign(_:)`` took.
    func release(_ address: String?) {
        state.withLock { state in
            state.total -= 1
            guard let address, let count = state.perAddress[address] else { return }
            state.perAddress[address] = count > 1 ? count - 1 : nil
        }
    }

    /// Open connections now, and distinct addresses among them (for `/metrics` and tests).
    var counts: (total: Int, addresses: Int) {
        state.withLock { ($0.total, $0.perAddress.count) }
    }
}
