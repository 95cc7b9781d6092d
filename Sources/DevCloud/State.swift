import Foundation
import HarpBasics
import Synchronization

/// The in-memory part of DevCloud's state, guarded by the server's mutex.
struct ServerState: Sendable {
    var requests = 0
    /// Requests answered so far by method, the admin endpoints left out (faults and refusals included).
    var requestsByMethod: [String: Int] = [:]
    var bytesSentTotal: Int64 = 0
    var bytesSentByUser: [String: Int64] = [:]
    var faults: [FaultRule] = []
    /// Failed logins per remote address: times of the failures.
    var failures: [String: [Date]] = [:]
    /// Pending and granted Login Flow v2 sessions, by poll token.
    var loginFlows: [String: LoginFlow] = [:]
    /// Locks by fileid.
    var locks: [Int64: FileLock] = [:]
    /// Group Folders ACL rules set by tests, by owner and path (reported in `nc:acl-list`, not enforced).
    var aclRules: [String: [DevCloudServer.ACLRule]] = [:]

    /// Takes the first fault rule matching the request, if any.
    mutating func takeFault(method: String, path: String) -> Int? {
        guard
            let index = faults.firstIndex(where: { rule in
                rule.remaining > 0 && (rule.method == nil || rule.method == method)
                    && (rule.pathPrefix.map { path.hasPrefix($0) } ?? true)
            })
        else { return nil }
        faults[index].remaining -= 1
        let status = faults[index].status
        if faults[index].remaining <= 0 { faults.remove(at: index) }
        return status
    }
}

/// "Answer the next `remaining` matching requests with `status`."
struct FaultRule: Sendable, Codable {
    var status: Int
    var remaining: Int
    var method: String?
    var pathPrefix: String?
}

/// One Login Flow v2 session.
struct LoginFlow: Sendable {
    var pollToken: String
    var loginToken: String
    var appName: String
    var created: Date
    var grantedUser: String?
}

/// A files_lock user lock (`X-User-Lock: 1`) or a plain WebDAV lock.
struct FileLock: Sendable {
    enum Kind: Sendable { case user, webdav }
    var kind: Kind
    var owner: String
    var ownerDisplayName: String
    /// The `<d:owner>` text of a WebDAV lock.
    var davOwner: String?
    var token: String
    var created: Int64
    /// Seconds; negative like files_lock's user locks (no expiry).
    var timeout: Int64

    var isExpired: Bool {
        timeout > 0 && Int64(Date().timeIntervalSince1970) > created + timeout
    }
}

/// The egress limit shared by all connections: a virtual clock that hands each chunk the next free time slot.
/// Accounting (bytes granted, total wait asked for) is kept for tests.
final class EgressLimiter: Sendable {
    let bytesPerSecond: Int
    private let state = Mutex(Accounting())

    struct Accounting: Sendable {
        /// When the link is free again, in seconds on the monotonic clock.
        var nextFree: Double = 0
        var bytesGranted: Int64 = 0
        var delaySeconds: Double = 0
    }

    init(bytesPerSecond: Int) {
        self.bytesPerSecond = max(1, bytesPerSecond)
    }

    /// Chunk size that keeps the pacing smooth: about 1/20 s of traffic, between 1 KiB and 64 KiB.
    var chunkSize: Int { min(64 * 1024, max(1024, bytesPerSecond / 20)) }

    /// Reserves `bytes` at time `now`; returns how long the caller must wait before sending them.
    func reserve(bytes: Int, now: Double) -> Double {
        state.withLock { state in
            let start = max(now, state.nextFree)
            state.nextFree = start + Double(bytes) / Double(bytesPerSecond)
            state.bytesGranted += Int64(bytes)
            let wait = state.nextFree - now
            state.delaySeconds += max(0, start - now)
            return max(0, wait)
        }
    }

    /// Waits until `bytes` may be sent.
    func acquire(bytes: Int) async throws {
        let now = Self.clock.now
        let wait = reserve(bytes: bytes, now: now)
        if wait > 0 { try await ContinuousClock().sleep(until: Self.clock.instant(atSeconds: now + wait)) }
    }

    var accounting: Accounting { state.withLock { $0 } }

    private static let clock = MonotonicClock()
}
