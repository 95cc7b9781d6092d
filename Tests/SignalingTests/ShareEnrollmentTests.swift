import ChunkStore
import Crypto
import Foundation
import GRDB
import Logging
import Synchronization
import Testing
import VersionLog

@testable import SignalingServer

/// Enrollment through a Nextcloud share (docs/proofs.md §3), against a fake Nextcloud account: each check on the
/// share and on the signed request, the single-use and expiring nonce, and the bounds.
@Suite("Share enrollment")
struct ShareEnrollmentTests {
    static let now: Int64 = 1_800_000_000
    static let instance = "https://cloud.test"

    /// The server account's view of Nextcloud: one share and its file, both set by the test.
    final class FakeAccount: EnrollmentAccount {
        let user = "harp-signal"
        let instance = ShareEnrollmentTests.instance
        let state: Mutex<(facts: ShareFacts?, file: Data)>
        let reads = Atomic(0)

        init(facts: ShareFacts?, file: Data) { state = Mutex((facts, file)) }

        func share(id: String) async throws -> ShareFacts {
            guard id == "7", let facts = state.withLock({ $0.facts }) else { throw DeadlineExceeded() }
            return facts
        }

        func read(_ path: String, limit: Int) async throws -> Data {
            reads.add(1, ordering: .relaxed)
            let file = state.withLock { $0.file }
            guard path == "/enroll.json", file.count <= limit else { throw DeadlineExceeded() }
            return file
        }
    }

    struct Fixture {
        let log: LogStore
        let account: FakeAccount
        let enrollment: ShareEnrollment
        let device = Curve25519.Signing.PrivateKey()

        init(nonces: EnrollmentNonces = EnrollmentNonces(), maxInFlight: Int = 8) throws {
            let directory = try temporaryDirectory()
            let abuse = try AbuseStore(
                directory: directory, configuration: makeServerConfiguration(dataDirectory: directory))
            log = try LogStore(pool: abuse.pool, key: try NoteSigningKey.generate(name: "log.test", type: .ed25519))
            account = FakeAccount(facts: Self.goodShare, file: Data())
            enrollment = ShareEnrollment(
                account: account, log: log, logger: Logger(label: "test"), nonces: nonces, maxInFlight: maxInFlight)
        }

        static let goodShare = ShareFacts(
            shareType: 0, owner: "alice", fileOwner: "alice", shareWith: "harp-signal", itemType: "file",
            permissions: 1, target: "/enroll.json")

        /// Asks for a challenge and puts a request signed by `device` for it into the shared file.
        func prepare(
            _ action: EnrollmentEntry.Action = .enroll, user: String = "alice",
            instance: String = ShareEnrollmentTests.instance, origin: String? = nil,
            time: Int64 = ShareEnrollmentTests.now, nonce: [UInt8]? = nil, key: Curve25519.Signing.PrivateKey? = nil
        ) throws -> EnrollmentRequest {
            let challenge = try #require(enrollment.challenge(now: ShareEnrollmentTests.now))
            let request = try EnrollmentRequest.signed(
                action, nonce: nonce ?? challenge.nonce, user: user, instance: instance,
                origin: origin ?? challenge.origin, time: time, key: key ?? device)
            account.state.withLock { $0.file = request.json }
            return request
        }

        func setShare(_ change: (inout ShareFacts) -> Void) {
            account.state.withLock { state in
                var facts = Self.goodShare
                change(&facts)
                state.facts = facts
            }
        }

        func enroll(at time: Int64 = ShareEnrollmentTests.now) async -> Result<Int, ShareEnrollment.Refusal> {
            do {
                return .success(try await enrollment.enroll(shareID: "7") { time }.leaf)
            } catch {
                return .failure(error)
            }
        }

        var size: Int { log.size }
    }

    func refused(_ result: Result<Int, ShareEnrollment.Refusal>, _ fragment: String) -> Bool {
        guard case .failure(.refused(let reason)) = result else { return false }
        return reason.contains(fragment)
    }

    @Test func aRequestSharedByItsUserEnrollsTheDeviceAndTheDeviceCanThenAppend() async throws {
        let fixture = try Fixture()
        _ = try fixture.prepare()
        let result = await fixture.enroll()
        #expect(result == .success(0))
        // The enrolled device may now append a version for alice.
        let entry = try VersionEntry.signed(
            lineage: VersionEntry.lineage(instance: Self.instance, fileID: "1"), previous: nil, operation: .create,
            contentRoot: Hash256.sha256([1]), size: 1, etag: "e", authorUser: "alice", time: Self.now,
            device: fixture.device)
        let appended = try await fixture.log.append(
            encoded: LogEntry.version(entry).encoded, expectedHead: .zero, now: Self.now)
        #expect(appended == .appended(leafIndex: 1))
    }

    @Test func theUserIsTheSharesOwnerNotTheNameInTheRequest() async throws {
        let fixture = try Fixture()
        _ = try fixture.prepare(user: "bob")
        #expect(refused(await fixture.enroll(), "the share's owner is alice"))
        #expect(fixture.size == 0)
    }

    @Test func aReshareOfSomeoneElsesFileIsRefused() async throws {
        let fixture = try Fixture()
        _ = try fixture.prepare()
        fixture.setShare { $0.fileOwner = "mallory" }
        #expect(refused(await fixture.enroll(), "reshare"))
    }

    @Test func aShareNotWithTheServerOrNotAReadOnlyUserShareOfAFileIsRefused() async throws {
        let fixture = try Fixture()
        let cases: [(String, (inout ShareFacts) -> Void)] = [
            ("not with the server", { $0.shareWith = "bob" }),
            ("not of a file", { $0.itemType = "folder" }),
            ("read-only", { $0.permissions = 3 }),
            ("not a user share", { $0.shareType = 3 }),
        ]
        for (fragment, change) in cases {
            _ = try fixture.prepare()
            fixture.setShare(change)
            #expect(refused(await fixture.enroll(), fragment), "\(fragment)")
        }
        #expect(fixture.size == 0)
    }

    @Test func aForgedSignatureIsRefused() async throws {
        let fixture = try Fixture()
        var request = try fixture.prepare()
        request.signature[0] ^= 1
        fixture.account.state.withLock { $0.file = request.json }
        #expect(refused(await fixture.enroll(), "signature"))
        // Another key cannot sign for the device either: the signature is checked against the named device.
        var other = try fixture.prepare(key: Curve25519.Signing.PrivateKey())
        other.device = DeviceKey(fixture.device.publicKey)
        fixture.account.state.withLock { $0.file = other.json }
        #expect(refused(await fixture.enroll(), "signature"))
        #expect(fixture.size == 0)
    }

    @Test func aRequestForAnotherInstanceOrLogOrTimeIsRefused() async throws {
        let fixture = try Fixture()
        _ = try fixture.prepare(instance: "https://other.test")
        #expect(refused(await fixture.enroll(), "another Nextcloud"))
        _ = try fixture.prepare(origin: "other.log")
        #expect(refused(await fixture.enroll(), "another log"))
        _ = try fixture.prepare(time: Self.now - 3600)
        #expect(refused(await fixture.enroll(), "time"))
        #expect(fixture.size == 0)
    }

    @Test func aNonceIsUsedOnceAndExpires() async throws {
        let fixture = try Fixture(nonces: EnrollmentNonces(capacity: 16, lifetime: 60))
        _ = try fixture.prepare()
        #expect(await fixture.enroll() == .success(0))
        // The same document again (a replay): its nonce is spent.
        #expect(refused(await fixture.enroll(), "nonce"))
        // A nonce the server never issued.
        _ = try fixture.prepare(nonce: [UInt8](repeating: 7, count: 32))
        #expect(refused(await fixture.enroll(), "nonce"))
        // A fresh nonce used after its lifetime (the request's own time is still within the skew).
        _ = try fixture.prepare()
        #expect(refused(await fixture.enroll(at: Self.now + 61), "nonce"))
        #expect(fixture.size == 1)
    }

    @Test func theNonceTableIsBounded() {
        var nonces = EnrollmentNonces(capacity: 3, lifetime: 10)
        for index in 0..<3 {
            let issued = nonces.issue([UInt8(index)], now: 0)
            #expect(issued)
        }
        let overFull = nonces.issue([9], now: 5)
        #expect(!overFull)
        #expect(nonces.count == 3)
        // Once they expire, their room is taken back.
        let afterExpiry = nonces.issue([9], now: 11)
        #expect(afterExpiry)
        #expect(nonces.count == 1)
    }

    @Test func aMalformedShareIDOrDocumentIsRefusedBeforeAnythingIsAppended() async throws {
        let fixture = try Fixture()
        do {
            _ = try await fixture.enrollment.enroll(shareID: "7/../../x") { Self.now }
            Issue.record("a share id with slashes was accepted")
        } catch {
            guard case .badRequest = error else { throw error }
        }
        _ = try fixture.prepare()
        fixture.account.state.withLock { $0.file = Data(repeating: 0x20, count: EnrollmentRequest.maximumDocumentSize) }
        #expect(refused(await fixture.enroll(), "not an enrollment request"))
        #expect(throws: EnrollmentRequestError.self) {
            try EnrollmentRequest(json: Data(repeating: 0x20, count: EnrollmentRequest.maximumDocumentSize + 1))
        }
        #expect(fixture.size == 0)
    }

    @Test func aRevocationEndsTheEnrollmentAndAReEnrollmentRestoresIt() async throws {
        let fixture = try Fixture()
        _ = try fixture.prepare()
        #expect(await fixture.enroll() == .success(0))
        _ = try fixture.prepare(.revoke)
        #expect(await fixture.enroll() == .success(1))
        let entry = try VersionEntry.signed(
            lineage: VersionEntry.lineage(instance: Self.instance, fileID: "1"), previous: nil, operation: .create,
            contentRoot: Hash256.sha256([1]), size: 1, etag: "e", authorUser: "alice", time: Self.now,
            device: fixture.device)
        await #expect(throws: LogStore.AppendError.notEnrolled) {
            try await fixture.log.append(encoded: LogEntry.version(entry).encoded, expectedHead: .zero, now: Self.now)
        }
        _ = try fixture.prepare()
        #expect(await fixture.enroll() == .success(2))
        let appended = try await fixture.log.append(
            encoded: LogEntry.version(entry).encoded, expectedHead: .zero, now: Self.now)
        #expect(appended == .appended(leafIndex: 3))
    }

    @Test func enrollmentsInFlightAreBounded() async throws {
        let fixture = try Fixture(maxInFlight: 0)
        _ = try fixture.prepare()
        guard case .failure(.unavailable) = await fixture.enroll() else {
            Issue.record("an enrollment over the in-flight bound was not refused")
            return
        }
        #expect(fixture.account.reads.load(ordering: .relaxed) == 0)
    }
}
