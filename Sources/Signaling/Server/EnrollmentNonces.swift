import Foundation

/// The nonces the server issued for enrollment challenges (docs/proofs.md §3): each is used at most once and only
/// until it expires, and the table holds at most `capacity` of them, so a client asking for nonces in a loop fills a
/// bounded table (and then gets none until some expire) rather than the server's memory.
///
/// A pure value: time and randomness come in from the caller.
struct EnrollmentNonces: Sendable {
    /// Outstanding nonces and the time (unix seconds) each expires at.
    private var expiries: [Data: Int64] = [:]
    let capacity: Int
    /// Seconds a nonce stays valid.
    let lifetime: Int64

    init(capacity: Int = 4096, lifetime: Int64 = 300) {
        precondition(capacity > 0 && lifetime > 0)
        self.capacity = capacity
        self.lifetime = lifetime
    }

    /// How many nonces are outstanding (expired ones included until the next `issue`).
    var count: Int { expiries.count }

    /// Records `nonce` (fresh random bytes from the caller) as issued at `now`; false when the table is full of
    /// nonces that have not expired.
    mutating func issue(_ nonce: [UInt8], now: Int64) -> Bool {
        if expiries.count >= capacity { expiries = expiries.filter { $0.value > now } }
        guard expiries.count < capacity else { return false }
        expiries[Data(nonce)] = now + lifetime
        return true
    }

    /// Uses up `nonce`: true if it was issued, not used yet and not expired at `now`. A nonce is gone after this
    /// call whatever the answer.
    mutating func consume(_ nonce: [UInt8], now: Int64) -> Bool {
        guard let expiry = expiries.removeValue(forKey: Data(nonce)) else { return false }
        return now <= expiry
    }
}
