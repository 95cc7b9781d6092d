import Foundation
import Testing

@testable import NextcloudClient

/// Chunked upload with resume, OCS, login flow and secret hygiene, over loopback.
@Suite("Client flows over loopback")
struct ClientFlowTests {
    static func temporaryFile(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("harp-up-\(UUID().uuidString)").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func chunkedUploadResumesAfterAnInterruption() async throws {
        let cloud = MiniCloud()
        let server = cloud.makeServer()
        let base = try await server.start()
        defer { Task { await server.stop() } }
        let content = TestClients.bytes(2560, seed: 3)
        let path = try Self.temporaryFile(content)
        defer { unlink(path) }
        cloud.state.withLock { $0.failChunk = 3 }

        // First attempt: the connection drops on chunk 3 and retries are off, so it fails.
        let once = TestClients.client(base, attempts: 1)
        do {
            _ = try await once.uploadFile(at: path, to: "/Footage/big.bin", chunkSize: 1024, singlePutLimit: 1000)
            Issue.record("the interrupted upload succeeded")
        } catch let error as NextcloudError {
            #expect(error.kind == .network)
        }
        #expect(cloud.state.withLock { $0.chunkPuts } == [1, 2, 3])

        // Second attempt: chunks 1 and 2 are on the server with the right size and are skipped.
        let result = try await TestClients.client(base).uploadFile(
            at: path, to: "/Footage/big.bin", chunkSize: 1024, singlePutLimit: 1000)
        #expect(result.fileID == 42)
        #expect(result.etag == "\"new\"")
        #expect(cloud.state.withLock { $0.chunkPuts } == [1, 2, 3, 3])
        let stored = cloud.state.withLock { $0.files["\(base)/remote.php/dav/files/alice/Footage/big.bin"] }
        #expect(stored == content)
        let move = try #require(server.requests.last)
        #expect(move.method == "MOVE")
        #expect(move.target.hasSuffix("/.file"))
        #expect(move.headers[.ocTotalLength] == "2560")
    }

    @Test func ocsUserAndLogout() async throws {
        let cloud = MiniCloud()
        let server = cloud.makeServer()
        let base = try await server.start()
        defer { Task { await server.stop() } }
        let client = TestClients.client(base)
        let user = try await client.currentUser()
        #expect(user.id == "alice")
        #expect(user.quota?.relative?.value == 4.76)
        let ocsRequest = try #require(server.requests.last)
        #expect(ocsRequest.headers[.ocsAPIRequest] == "true")
        #expect(ocsRequest.target.contains("format=json"))
        try await client.deleteAppPassword()
        await #expect(throws: NextcloudError.self) { _ = try await client.currentUser() }
    }

    @Test func loginFlowPollsUntilGranted() async throws {
        let cloud = MiniCloud()
        let server = cloud.makeServer()
        let base = try await server.start()
        defer { Task { await server.stop() } }
        let auth = Authenticator(server: URL(string: base)!, options: TestClients.options())
        let flow = try await auth.startLoginFlow()
        #expect(flow.login.hasSuffix("/index.php/login/v2/flow/abc"))
        let result = try await auth.waitForLoginFlow(flow, interval: .milliseconds(1), timeout: .seconds(30))
        #expect(result.loginName == "alice")
        #expect(result.appPassword == TestClients.password)
        #expect(cloud.state.withLock { $0.polls } == 2)
    }

    @Test func noSecretInAnyLogLineOrError() async throws {
        let cloud = MiniCloud()
        let server = cloud.makeServer()
        let base = try await server.start()
        defer { Task { await server.stop() } }
        let logs = LogCapture()
        let wrong = "wrong-PW-0b5e-never-in-logs"
        var errors: [String] = []

        // A wrong password: the server even echoes it in its message.
        let bad = TestClients.client(base, password: wrong, logger: logs.logger)
        do { _ = try await bad.currentUser() } catch {
            errors.append("\(error)"); errors.append(String(reflecting: error))
        }
        do { _ = try await bad.item(at: "/x") } catch { errors.append("\(error)") }

        // The right password through every path that can fail.
        let good = TestClients.client(base, logger: logs.logger)
        do { _ = try await good.item(at: "/missing") } catch { errors.append("\(error)") }
        do { _ = try await good.shares(of: "/nope") } catch { errors.append("\(error)") }
        let path = try Self.temporaryFile(TestClients.bytes(3000))
        defer { unlink(path) }
        cloud.state.withLock { $0.failChunk = 2 }
        do { _ = try await good.uploadFile(at: path, to: "/a.bin", chunkSize: 1024, singlePutLimit: 10) } catch {
            errors.append("\(error)")
        }
        _ = try await good.uploadFile(at: path, to: "/a.bin", chunkSize: 1024, singlePutLimit: 10)
        let auth = Authenticator(server: URL(string: base)!, options: TestClients.options(), logger: logs.logger)
        let flow = try await auth.startLoginFlow()
        errors.append("\(flow)")
        errors.append(String(reflecting: flow))
        let granted = try await auth.waitForLoginFlow(flow, interval: .milliseconds(1))
        errors.append("\(granted)")
        errors.append("\(good.credentials)")
        errors.append(String(reflecting: good.credentials))
        do { _ = try await auth.exchangePassword(user: "alice", password: wrong) } catch { errors.append("\(error)") }

        #expect(errors.count >= 8)
        #expect(!logs.all.isEmpty)
        for text in errors + logs.all {
            #expect(!text.contains(wrong), "leaked: \(text)")
            #expect(!text.contains(TestClients.password), "leaked: \(text)")
            #expect(!text.contains("poll-secret-token"), "leaked: \(text)")
        }
        // The echoed password was replaced, so the redaction is exercised.
        #expect(errors.contains { $0.contains("<redacted>") })
    }
}
