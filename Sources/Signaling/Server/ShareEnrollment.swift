import Foundation
import Logging
import Synchronization
import VersionLog

/// What the server's Nextcloud account learns about a share made with it.
struct ShareFacts: Sendable, Equatable {
    var shareType: Int
    /// `uid_owner`: who made the share (Nextcloud authenticated them).
    var owner: String
    /// `uid_file_owner`: whose file it is.
    var fileOwner: String?
    /// `share_with`: the recipient.
    var shareWith: String?
    /// `item_type`: "file" or "folder".
    var itemType: String?
    var permissions: Int
    /// `file_target`: where the file is in the recipient's (the server account's) tree.
    var target: String
}

/// The signaling server's own Nextcloud account, as enrollment uses it: look up a share made with it, read the
/// shared file. Every answer is hostile input: implementations bound what they read.
protocol EnrollmentAccount: Sendable {
    /// The account's user id (devices share their challenge with it).
    var user: String { get }
    /// The Nextcloud instance, as lineages and challenges name it (the URL without a trailing slash).
    var instance: String { get }
    /// The share `id`, as this account sees it; throws if there is none.
    func share(id: String) async throws -> ShareFacts
    /// At most `limit` bytes of the file at `path` of this account's tree; throws above the limit.
    func read(_ path: String, limit: Int) async throws -> Data
}

/// Enrollment of a device through a Nextcloud share (docs/proofs.md §3): the server issues a nonce; the device
/// writes an `EnrollmentRequest` signed by its key into a file of its own home, shares it read-only with the
/// server's account and names the share; the server reads the share as its own account, takes the user from the
/// share's owner as Nextcloud reports it, checks the document and appends `enroll` (or `revoke`).
///
/// The server never holds a user's password: Nextcloud itself vouches for the owner of the share. Bounded: the
/// nonce table (`EnrollmentNonces`), the enrollments in flight (`maxInFlight`, more are refused at once), the bytes
/// read from Nextcloud, and the time each Nextcloud request may take.
final class ShareEnrollment: Sendable {
    /// Why an enrollment was refused.
    enum Refusal: Error, Equatable, CustomStringConvertible {
        /// The request itself is malformed (400).
        case badRequest(String)
        /// The proof does not hold (403).
        case refused(String)
        /// Nextcloud could not be asked, or too many enrollments are in flight (503).
        case unavailable(String)

        var description: String {
            switch self {
            case .badRequest(let reason), .refused(let reason), .unavailable(let reason): reason
            }
        }
    }

    /// What the server hands a device that wants to enroll.
    struct Challenge: Sendable {
        var nonce: [UInt8]
        var account: String
        var instance: String
        var origin: String
        var expires: Int64
    }

    let account: any EnrollmentAccount
    let log: LogStore
    let logger: Logger
    /// How long each Nextcloud request may take.
    let timeout: Duration
    let maxInFlight: Int
    private let nonces: Mutex<EnrollmentNonces>
    private let inFlight = Mutex(0)

    init(
        account: any EnrollmentAccount, log: LogStore, logger: Logger, nonces: EnrollmentNonces = EnrollmentNonces(),
        timeout: Duration = .seconds(10), maxInFlight: Int = 8
    ) {
        self.account = account
        self.log = log
        self.logger = logger
        self.nonces = Mutex(nonces)
        self.timeout = timeout
        self.maxInFlight = maxInFlight
    }

    /// A new challenge, nil when the nonce table is full.
    func challenge(now: Int64) -> Challenge? {
        var generator = SystemRandomNumberGenerator()
        let nonce = (0..<EnrollmentRequest.nonceLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let lifetime = nonces.withLock { $0.issue(nonce, now: now) ? $0.lifetime : nil }
        guard let lifetime else { return nil }
        return Challenge(
            nonce: nonce, account: account.user, instance: account.instance, origin: log.origin,
            expires: now + lifetime)
    }

    /// Checks the share `shareID` and the document in it; appends the enrollment (or revocation). Returns the leaf,
    /// the action, the device and the user.
    func enroll(
        shareID: String, now: @Sendable () -> Int64
    ) async throws(Refusal) -> (leaf: Int, request: EnrollmentRequest) {
        guard !shareID.isEmpty, shareID.utf8.count <= 20, shareID.utf8.allSatisfy({ (48...57).contains($0) }) else {
            throw .badRequest("the body is the share id (decimal digits)")
        }
        let admitted = inFlight.withLock { count in
            guard count < maxInFlight else { return false }
            count += 1
            return true
        }
        guard admitted else { throw .unavailable("too many enrollments in progress; try again") }
        defer { inFlight.withLock { $0 -= 1 } }

        let facts: ShareFacts
        do {
            facts = try await withDeadline(timeout) { try await self.account.share(id: shareID) }
        } catch {
            logger.info("enrollment share lookup failed", metadata: ["share.id": "\(shareID)", "error": "\(error)"])
            throw .refused("the server's Nextcloud account sees no share \(shareID)")
        }
        try Self.check(facts, serverUser: account.user)
        let data: Data
        do {
            data = try await withDeadline(timeout) {
                try await self.account.read(facts.target, limit: EnrollmentRequest.maximumDocumentSize)
            }
        } catch {
            throw .refused("cannot read the shared enrollment file: \(error)")
        }
        let request: EnrollmentRequest
        do {
            request = try EnrollmentRequest(json: data)
        } catch {
            throw .refused("the shared file is not an enrollment request: \(error)")
        }
        let time = now()
        try check(request, owner: facts.owner, now: time)
        guard nonces.withLock({ $0.consume(request.nonce, now: time) }) else {
            throw .refused("the nonce is unknown, used or expired: ask for a new challenge")
        }
        do {
            let leaf = try await log.appendEnrollment(
                request.action, device: request.device, user: facts.owner, now: time)
            logger.info(
                "device enrollment appended",
                metadata: [
                    "device": "\(request.device)", "user": "\(facts.owner)", "action": "\(request.action)",
                    "leaf": "\(leaf)",
                ])
            return (leaf, request)
        } catch {
            throw .unavailable("the log could not append: \(error)")
        }
    }

    /// The share must be a read-only user share of a file, made with this server's account by the file's owner.
    static func check(_ facts: ShareFacts, serverUser: String) throws(Refusal) {
        guard facts.shareType == 0 else { throw .refused("not a user share") }
        guard facts.shareWith == serverUser else { throw .refused("the share is not with the server's account") }
        guard facts.itemType == "file" else { throw .refused("the share is not of a file") }
        guard !facts.owner.isEmpty, facts.fileOwner == nil || facts.fileOwner == facts.owner else {
            throw .refused("the share's owner does not own the file (a reshare)")
        }
        guard facts.permissions & ~17 == 0, facts.permissions & 1 == 1 else {
            throw .refused("the share must be read-only")
        }
    }

    /// The document must be signed by its device, for the share's owner, this instance and this log, now.
    func check(_ request: EnrollmentRequest, owner: String, now: Int64) throws(Refusal) {
        guard request.hasValidSignature else { throw .refused("the device signature does not verify") }
        guard request.user == owner else {
            throw .refused("the request names user \(request.user) but the share's owner is \(owner)")
        }
        guard request.instance == account.instance else { throw .refused("the request is for another Nextcloud") }
        guard request.origin == log.origin else { throw .refused("the request is for another log") }
        guard abs(request.time - now) <= log.maxClockSkew else { throw .refused("the request's time is too far off") }
    }
}

/// Runs `operation`, cancelling it (and throwing) once `limit` has passed.
func withDeadline<T: Sendable>(
    _ limit: Duration, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw DeadlineExceeded() }
        return value
    }
}

struct DeadlineExceeded: Error, CustomStringConvertible {
    var description: String { "Nextcloud did not answer in time" }
}
