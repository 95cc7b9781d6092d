// Integration tests of the client against DevCloud started as a real server on loopback.
import DevCloud
import Foundation
import Logging
import Synchronization
import Testing

@testable import NextcloudClient

/// One DevCloud with alice (owner of /Footage), bob (read-only share of it) and carol (nothing).
final class DevCloudFixture: Sendable {
    static let passwords = [
        "alice": "alice-Account-PW-1", "bob": "bob-Account-PW-2", "carol": "carol-Account-PW-3",
    ]
    static let clip = TestClients.bytes(1 << 20, seed: 11)

    let server: DevCloudServer
    let base: URL
    let directory: URL
    let logs: LogCapture
    let appPasswords: [String: String]

    private init(
        server: DevCloudServer, base: URL, directory: URL, logs: LogCapture, appPasswords: [String: String]
    ) {
        self.server = server
        self.base = base
        self.directory = directory
        self.logs = logs
        self.appPasswords = appPasswords
    }

    static func start(
        logs: LogCapture = LogCapture(), bruteForceMaxFailures: Int = 11
    ) async throws -> DevCloudFixture {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "devcloud-nc-\(UUID().uuidString)")
        let configuration = DevCloudConfiguration(
            dataDirectory: directory.path,
            users: passwords.sorted { $0.key < $1.key }.map {
                DevCloudConfiguration.User(name: $0.key, password: $0.value)
            },
            bruteForceMaxFailures: bruteForceMaxFailures)
        let server = DevCloudServer(configuration: configuration, logger: Logger(label: "devcloud"))
        _ = try await server.start(host: "127.0.0.1", port: 0)
        let base = try #require(URL(string: server.baseURL))
        // Every user trades the account password for an app password once, as `harp-cli login` does.
        var appPasswords: [String: String] = [:]
        let auth = Authenticator(server: base, options: TestClients.options(), logger: logs.logger)
        for (user, password) in passwords {
            appPasswords[user] = try await auth.exchangePassword(user: user, password: password).appPassword
        }
        let fixture = DevCloudFixture(
            server: server, base: base, directory: directory, logs: logs, appPasswords: appPasswords)
        let alice = fixture.client("alice")
        try await alice.makeFolder("/Footage")
        _ = try await alice.upload(Data(clip), to: "/Footage/clip.bin")
        try server.addShare(
            DevCloudConfiguration.Share(owner: "alice", path: "/Footage", sharee: "bob", permissions: 1))
        return fixture
    }

    func client(_ user: String, attempts: Int = 4) -> NextcloudClient {
        NextcloudClient(
            credentials: Credentials(server: base, user: user, appPassword: appPasswords[user] ?? ""),
            options: TestClients.options(attempts: attempts), logger: logs.logger)
    }

    func stop() async {
        await server.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Every secret this fixture knows.
    var secrets: [String] { Array(Self.passwords.values) + Array(appPasswords.values) }

    /// Fails the test if a secret appears in a log line or in one of `errors`.
    func expectNoSecrets(in errors: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        for text in errors + logs.all {
            for secret in secrets where text.contains(secret) {
                Issue.record("a secret leaked into: \(text)", sourceLocation: sourceLocation)
            }
        }
    }
}

@Suite("Client against DevCloud", .serialized)
struct DevCloudIntegrationTests {
    @Test func rangeGetOfFirstMiddleAndLastBytes() async throws {
        let cloud = try await DevCloudFixture.start()
        let bob = cloud.client("bob")
        let item = try await bob.item(at: "/Footage/clip.bin")
        #expect(item.size == Int64(DevCloudFixture.clip.count))
        #expect(item.permissions?.canModifyContent == false)
        let size = DevCloudFixture.clip.count
        let before = cloud.server.bytesSent(user: "bob")
        var requested: Int64 = 0
        for (first, last) in [(0, 65_535), (size / 2 - 100, size / 2 + 99), (size - 1, size - 1)] {
            let range = try #require(ByteRange(first: Int64(first), last: Int64(last)))
            let (data, info) = try await bob.data(at: "/Footage/clip.bin", range: range, ifMatch: item.etag)
            #expect(Array(data) == Array(DevCloudFixture.clip[first...last]))
            #expect(info.status == 206)
            #expect(info.range == range)
            #expect(info.totalSize == Int64(size))
            requested += range.length
        }
        // The server sent the ranges, not the file. (Its counter is updated after each write,
        // so it may lag behind what the client received, but it can never exceed it.)
        let sent = cloud.server.bytesSent(user: "bob") - before
        #expect(sent <= requested)
        cloud.expectNoSecrets(in: [])
        await cloud.stop()
    }

    @Test func readOnlyShareRefusesWritesWithForbidden() async throws {
        let cloud = try await DevCloudFixture.start()
        let bob = cloud.client("bob")
        var errors: [String] = []
        for attempt in [
            { _ = try await bob.upload(Data("new".utf8), to: "/Footage/new.txt") },
            { _ = try await bob.upload(Data("over".utf8), to: "/Footage/clip.bin") },
            { try await bob.delete("/Footage/clip.bin") },
        ] as [@Sendable () async throws -> Void] {
            do {
                try await attempt()
                Issue.record("a write into a read-only share succeeded")
            } catch let error as NextcloudError {
                #expect(error.kind == .forbidden)
                errors.append("\(error)")
            }
        }
        cloud.expectNoSecrets(in: errors)
        await cloud.stop()
    }

    @Test func userWithoutShareGetsNotFoundOrNoAccess() async throws {
        let cloud = try await DevCloudFixture.start()
        let carol = cloud.client("carol")
        var errors: [String] = []
        do {
            _ = try await carol.item(at: "/Footage")
            Issue.record("carol sees /Footage")
        } catch let error as NextcloudError {
            #expect(error.kind == .notFoundOrNoAccess)
            #expect(error.description.contains("no access"))
            errors.append("\(error)")
        }
        do {
            _ = try await carol.data(at: "/Footage/clip.bin")
            Issue.record("carol read the clip")
        } catch let error as NextcloudError {
            #expect(error.kind == .notFoundOrNoAccess)
            errors.append("\(error)")
        }
        #expect(try await carol.sharedWithMe().isEmpty)
        cloud.expectNoSecrets(in: errors)
        await cloud.stop()
    }

    @Test func chunkedUploadOf50MiBInterruptedAndResumed() async throws {
        let thirdChunk = AsyncStream<Void>.makeStream()
        let logs = LogCapture { line in
            if line.contains("chunk uploaded"), line.contains("chunk.index=3 ") { thirdChunk.continuation.yield() }
        }
        let cloud = try await DevCloudFixture.start(logs: logs)
        let size = 50 << 20
        let content = TestClients.bytes(size, seed: 5)
        let path = cloud.directory.appendingPathComponent("local-50MiB.bin").path
        try Data(content).write(to: URL(fileURLWithPath: path))
        let alice = cloud.client("alice")
        let modified = Date(timeIntervalSince1970: 1_700_000_000)

        // Interrupt: cancel the upload once chunk 3 of 10 is on the server.
        let first = Task {
            try await alice.uploadFile(at: path, to: "/Footage/big.bin", modified: modified, chunkSize: 5 << 20)
        }
        var events = thirdChunk.stream.makeAsyncIterator()
        _ = await events.next()
        first.cancel()
        let firstResult = await first.result
        #expect(throws: CancellationError.self) { _ = try firstResult.get() }
        await #expect(throws: NextcloudError.self) { _ = try await alice.item(at: "/Footage/big.bin") }

        // Resume: the chunks already there are not sent again.
        let result = try await alice.uploadFile(
            at: path, to: "/Footage/big.bin", modified: modified, chunkSize: 5 << 20)
        #expect(result.fileID != nil)
        #expect(logs.all.contains { $0.contains("chunked upload resumed") && !$0.contains("chunks.skipped=0") })
        let item = try await alice.item(at: "/Footage/big.bin")
        #expect(item.size == Int64(size))
        #expect(item.modified == modified)
        let sink = DataSink(limit: size)
        try await alice.download("/Footage/big.bin", into: sink)
        #expect(sink.data == Data(content))
        cloud.expectNoSecrets(in: [])
        await cloud.stop()
    }

    @Test func serverErrorsTwiceThenSuccessIsRetried() async throws {
        let cloud = try await DevCloudFixture.start()
        cloud.server.injectFaults(
            status: 503, count: 2, method: "GET", pathPrefix: "/remote.php/dav/files/bob/Footage/clip.bin")
        let (data, info) = try await cloud.client("bob").data(at: "/Footage/clip.bin")
        #expect(info.status == 200)
        #expect(Array(data) == DevCloudFixture.clip)
        #expect(cloud.logs.all.filter { $0.contains("retrying request") }.count == 2)
        cloud.expectNoSecrets(in: [])
        await cloud.stop()
    }

    @Test func repeatedWrongPasswordsAreThrottledAndTheClientSaysSo() async throws {
        let cloud = try await DevCloudFixture.start()
        var kinds: [NextcloudError.Kind] = []
        var errors: [String] = []
        // A new client each time, like repeated runs of harp-cli: one client stops after its first 401.
        for _ in 0..<13 {
            let wrong = NextcloudClient(
                credentials: Credentials(server: cloud.base, user: "alice", appPassword: "wrong-Pass-4711"),
                options: TestClients.options(), logger: cloud.logs.logger)
            do {
                _ = try await wrong.item(at: "/Footage")
            } catch let error as NextcloudError {
                kinds.append(error.kind)
                errors.append("\(error)")
            }
        }
        #expect(kinds.prefix(11).allSatisfy { $0 == .badCredentials })
        #expect(kinds.last == .throttled)
        #expect(errors.last?.contains("429") == true)
        // The whole address is throttled: the right app password too.
        do {
            _ = try await cloud.client("alice").item(at: "/Footage")
            Issue.record("a throttled address was served")
        } catch let error as NextcloudError {
            #expect(error.kind == .throttled)
            errors.append("\(error)")
        }
        for text in errors + cloud.logs.all {
            #expect(!text.contains("wrong-Pass-4711"))
        }
        cloud.expectNoSecrets(in: errors)
        await cloud.stop()
    }

    @Test func loginFlowAndLogout() async throws {
        let cloud = try await DevCloudFixture.start()
        let auth = Authenticator(server: cloud.base, options: TestClients.options(), logger: cloud.logs.logger)
        let flow = try await auth.startLoginFlow()
        #expect(try await auth.pollLoginFlow(flow) == nil)
        #expect(cloud.server.grantLoginFlow(user: "alice"))
        let granted = try await auth.waitForLoginFlow(flow, interval: .milliseconds(10), timeout: .seconds(30))
        let client = NextcloudClient(
            credentials: Credentials(server: cloud.base, user: granted.loginName, appPassword: granted.appPassword),
            options: TestClients.options(), logger: cloud.logs.logger)
        #expect(try await client.currentUser().id == "alice")
        try await client.deleteAppPassword()
        var errors: [String] = []
        do {
            _ = try await client.currentUser()
            Issue.record("a revoked app password still works")
        } catch let error as NextcloudError {
            #expect(error.kind == .badCredentials)
            errors.append("\(error)")
        }
        cloud.expectNoSecrets(in: errors + [granted.appPassword.isEmpty ? "" : "\(granted)"])
        await cloud.stop()
    }
}
