import ChunkStore
import Crypto
import Foundation
import GRDB
import Testing
import VersionLog

@testable import SignalingServer

/// The version log in the server's database: the checks on append, compare-and-swap, restarts.
@Suite("Version log store")
struct LogStoreTests {
    static let now: Int64 = 1_800_000_000

    /// A fresh database in a new directory, with a log key.
    struct Fixture {
        let directory: String
        let key: NoteSigningKey
        let abuse: AbuseStore
        let log: LogStore

        init(directory: String? = nil, key: NoteSigningKey? = nil) throws {
            self.directory = try directory ?? temporaryDirectory()
            self.key = try key ?? NoteSigningKey.generate(name: "log.test", type: .ed25519)
            abuse = try AbuseStore(
                directory: self.directory, configuration: makeServerConfiguration(dataDirectory: self.directory))
            log = try LogStore(pool: abuse.pool, key: self.key)
        }

        func reopened() throws -> Fixture { try Fixture(directory: directory, key: key) }
    }

    struct Author {
        let device = Curve25519.Signing.PrivateKey()
        var user = "alice"
        var deviceKey: DeviceKey { DeviceKey(device.publicKey) }

        func version(
            _ lineage: Hash256, after previous: VersionEntry?, time: Int64 = LogStoreTests.now, size: UInt64 = 10
        ) throws -> VersionEntry {
            try VersionEntry.signed(
                lineage: lineage, previous: previous, operation: previous == nil ? .create : .modify,
                contentRoot: Hash256.sha256(Array("content \(size)".utf8)), size: size, etag: "etag-\(size)",
                authorUser: user, time: time, device: device)
        }
    }

    static let lineage = VersionEntry.lineage(instance: "https://cloud.test", fileID: "42")

    func enrolled(_ fixture: Fixture, _ author: Author) async throws {
        try await fixture.log.appendEnrollment(.enroll, device: author.deviceKey, user: author.user, now: Self.now)
    }

    func append(
        _ fixture: Fixture, _ entry: VersionEntry, expected: Hash256? = nil
    ) async throws
        -> LogStore.AppendResult
    {
        try await fixture.log.append(
            encoded: LogEntry.version(entry).encoded, expectedHead: expected ?? entry.previousHash, now: Self.now)
    }

    @Test func appendsAChainAndSurvivesARestart() async throws {
        let fixture = try Fixture()
        let author = Author()
        try await enrolled(fixture, author)
        var previous: VersionEntry?
        for size in 1...3 {
            let entry = try author.version(Self.lineage, after: previous, size: UInt64(size))
            #expect(try await append(fixture, entry) == .appended(leafIndex: size))
            previous = entry
        }
        #expect(fixture.log.size == 4)
        let root = fixture.log.signedCheckpoint().checkpoint
        let reopened = try fixture.reopened()
        #expect(reopened.log.size == 4)
        #expect(reopened.log.signedCheckpoint().checkpoint == root)
        let head = try #require(try await reopened.log.head(of: Self.lineage))
        #expect(head.version == 3 && head.chainHash == previous?.chainHash && head.leafIndex == 3)
        // The tree is the RFC 6962 tree of the entries, as the in-memory log builds it.
        var model = InMemoryLog(key: fixture.key)
        for index in 0..<4 {
            model.append(try LogEntry(encoded: try #require(try await reopened.log.entry(at: index))))
        }
        #expect(model.checkpoint() == root)
    }

    @Test func aLostRaceGetsTheCurrentHead() async throws {
        let fixture = try Fixture()
        let author = Author()
        try await enrolled(fixture, author)
        let first = try author.version(Self.lineage, after: nil)
        #expect(try await append(fixture, first) == .appended(leafIndex: 1))
        // A second writer also signed version 1 (against no head): it lost; it gets version 1 back.
        let rival = try author.version(Self.lineage, after: nil, size: 99)
        guard case .conflict(let head) = try await append(fixture, rival) else {
            Issue.record("a stale expected head was accepted")
            return
        }
        #expect(head?.version == 1 && head?.entry == LogEntry.version(first).encoded)
        #expect(fixture.log.size == 2)
    }

    @Test func refusesAVersionThatDoesNotFollowItsHead() async throws {
        let fixture = try Fixture()
        let author = Author()
        try await enrolled(fixture, author)
        let first = try author.version(Self.lineage, after: nil)
        _ = try await append(fixture, first)
        // Right expected head, wrong number (skips version 2).
        var skipping = try author.version(Self.lineage, after: first)
        skipping.version = 3
        skipping.seal(device: author.device)
        await #expect(throws: LogStore.AppendError.outOfOrder("version 3 after 1")) {
            try await append(fixture, skipping, expected: first.chainHash)
        }
        // Right expected head and number, but the previous hash is not the head's.
        var unlinked = try author.version(Self.lineage, after: first)
        unlinked.previousHash = Hash256.sha256([1])
        unlinked.seal(device: author.device)
        await #expect(throws: LogStore.AppendError.outOfOrder("the previous hash is not the head's chain hash")) {
            try await append(fixture, unlinked, expected: first.chainHash)
        }
        #expect(fixture.log.size == 2)
    }

    @Test func refusesAForgedAuthorSignature() async throws {
        let fixture = try Fixture()
        let author = Author()
        try await enrolled(fixture, author)
        var entry = try author.version(Self.lineage, after: nil)
        entry.signature[0] ^= 1
        await #expect(throws: LogStore.AppendError.badSignature) { try await append(fixture, entry) }
    }

    @Test func refusesAModifiedEntry() async throws {
        let fixture = try Fixture()
        let author = Author()
        try await enrolled(fixture, author)
        var entry = try author.version(Self.lineage, after: nil)
        entry.size += 1
        await #expect(throws: LogStore.AppendError.malformed("h_n does not recompute")) {
            try await append(fixture, entry)
        }
    }

    @Test func refusesATimeOutsideTheClockSkew() async throws {
        let fixture = try Fixture()
        let author = Author()
        try await enrolled(fixture, author)
        for time in [Self.now - 301, Self.now + 301] {
            let entry = try author.version(Self.lineage, after: nil, time: time)
            await #expect(throws: LogStore.AppendError.clockSkew(entryTime: time, serverTime: Self.now)) {
                try await append(fixture, entry)
            }
        }
        let inside = try author.version(Self.lineage, after: nil, time: Self.now + 300)
        #expect(try await append(fixture, inside) == .appended(leafIndex: 1))
    }

    @Test func refusesAnAuthorWithoutEnrollmentOrRevokedOrEnrolledForAnotherUser() async throws {
        let fixture = try Fixture()
        var author = Author()
        let entry = try author.version(Self.lineage, after: nil)
        await #expect(throws: LogStore.AppendError.notEnrolled) { try await append(fixture, entry) }
        // Enrolled for bob, not for alice.
        try await fixture.log.appendEnrollment(.enroll, device: author.deviceKey, user: "bob", now: Self.now)
        await #expect(throws: LogStore.AppendError.notEnrolled) { try await append(fixture, entry) }
        try await enrolled(fixture, author)
        #expect(try await append(fixture, entry) == .appended(leafIndex: 2))
        try await fixture.log.appendEnrollment(.revoke, device: author.deviceKey, user: "alice", now: Self.now)
        let next = try author.version(Self.lineage, after: entry)
        await #expect(throws: LogStore.AppendError.notEnrolled) { try await append(fixture, next) }
        author.user = "bob"
        let asBob = try author.version(VersionEntry.lineage(instance: "https://cloud.test", fileID: "7"), after: nil)
        #expect(try await append(fixture, asBob) == .appended(leafIndex: 4))
    }

    @Test func refusesMalformedOversizeAndEnrollmentEntries() async throws {
        let fixture = try Fixture()
        await #expect(throws: LogStore.AppendError.self) {
            try await fixture.log.append(encoded: [1, 1, 0], expectedHead: .zero, now: Self.now)
        }
        let oversize = [UInt8](repeating: 1, count: LogEntry.maximumEncodedSize + 1)
        await #expect(
            throws: LogStore.AppendError.malformed("\(LogEncodingError.entryTooLarge(size: 1025, limit: 1024))")
        ) {
            try await fixture.log.append(encoded: oversize, expectedHead: .zero, now: Self.now)
        }
        let enrollment = try EnrollmentEntry.attested(
            .enroll, device: Author().deviceKey, user: "mallory", time: Self.now, logKey: fixture.key)
        await #expect(throws: LogStore.AppendError.notAVersion) {
            try await fixture.log.append(
                encoded: LogEntry.enrollment(enrollment).encoded, expectedHead: .zero, now: Self.now)
        }
        #expect(fixture.log.size == 0)
    }

    @Test func theTableRefusesUpdatesDeletesAndGaps() async throws {
        let fixture = try Fixture()
        try await enrolled(fixture, Author())
        for sql in [
            "UPDATE log_leaf SET entry = x'00' WHERE idx = 0", "DELETE FROM log_leaf",
            "INSERT INTO log_leaf(idx, entry, leafHash, device) VALUES (5, x'01', zeroblob(32), zeroblob(32))",
        ] {
            #expect(throws: (any Error).self, "\(sql)") { try fixture.abuse.pool.write { try $0.execute(sql: sql) } }
        }
    }
}
