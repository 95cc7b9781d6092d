import Foundation
import Logging
import Synchronization
import Testing

@testable import DevCloud

/// Auth, the brute-force throttle, Login Flow v2, app passwords, faults, counters, the egress limit and the admin
/// endpoints, against a real DevCloud on 127.0.0.1.
@Suite("DevCloud services over real sockets")
struct ServiceBehaviourTests {
    @Test("eleven wrong passwords lock the address out with 429, for every user, until reset")
    func bruteForce() async throws {
        let server = try await TestServer(folders: ["alice": ["Footage"]])
        let path = "/remote.php/dav/files/alice/Footage"
        for attempt in 1...11 {
            let result = try await server.request(
                "PROPFIND", path, as: "alice", password: "wrong", headers: [("Depth", "0")])
            #expect(result.status == 401, "attempt \(attempt)")
            #expect(result.header("WWW-Authenticate") == "Basic realm=\"Nextcloud\", charset=\"UTF-8\"")
        }
        #expect(
            try await server.request("PROPFIND", path, as: "alice", password: "wrong", headers: [("Depth", "0")]).status
                == 429)
        #expect(try await server.request("PROPFIND", path, as: "alice", headers: [("Depth", "0")]).status == 429)
        let ocs = try await server.request(
            "GET", "/ocs/v2.php/cloud/user?format=json", as: "bob", headers: [("OCS-APIRequest", "true")])
        #expect(ocs.status == 429 && ocs.text.contains("\"statuscode\":429"))
        let anonymous = try await server.request(
            "GET", "/ocs/v2.php/cloud/capabilities?format=json", headers: [("OCS-APIRequest", "true")])
        #expect(anonymous.status == 200 && anonymous.text.contains("\"delay\":25000"))
        #expect(try await server.request("GET", "/status.php").status == 200)
        server.server.resetBruteForce()
        #expect(try await server.request("PROPFIND", path, as: "alice", headers: [("Depth", "0")]).status == 207)
        await server.stop()
    }

    @Test("injected faults: 503 twice, then normal answers; filters by method and path prefix")
    func faults() async throws {
        let server = try await TestServer(folders: ["alice": ["F"]])
        server.server.injectFaults(status: 503, count: 2)
        let path = "/remote.php/dav/files/alice/F"
        #expect(try await server.request("PROPFIND", path, as: "alice", headers: [("Depth", "0")]).status == 503)
        #expect(try await server.request("PROPFIND", path, as: "alice", headers: [("Depth", "0")]).status == 503)
        #expect(try await server.request("PROPFIND", path, as: "alice", headers: [("Depth", "0")]).status == 207)
        server.server.injectFaults(status: 500, count: 1, method: "GET", pathPrefix: "/status.php")
        #expect(try await server.request("PROPFIND", path, as: "alice", headers: [("Depth", "0")]).status == 207)
        #expect(try await server.request("GET", "/status.php").status == 500)
        #expect(try await server.request("GET", "/status.php").status == 200)
        await server.stop()
    }

    @Test("the bytes-sent counter counts GET body bytes exactly, per user")
    func bytesSent() async throws {
        let server = try await TestServer(
            shares: [.init(owner: "alice", path: "/Footage", sharee: "bob", permissions: 1)],
            folders: ["alice": ["Footage"]])
        _ = try await server.seedFootage()
        #expect(server.server.bytesSent() == 0)
        let path = "/remote.php/dav/files/bob/Footage/clip1.mp4"
        _ = try await server.request("GET", path, as: "bob")
        _ = try await server.request("GET", path, as: "bob", headers: [("Range", "bytes=100-115")])
        _ = try await server.request("HEAD", path, as: "bob")
        _ = try await server.request("PROPFIND", path, as: "bob", headers: [("Depth", "0")])
        _ = try await server.request(
            "GET", "/remote.php/dav/files/alice/Footage/clip1.mp4", as: "alice", headers: [("Range", "bytes=-1")])
        #expect(server.server.bytesSent(user: "bob") == 1_048_576 + 16)
        #expect(server.server.bytesSent(user: "alice") == 1)
        #expect(server.server.bytesSent() == 1_048_576 + 17)
        let stats = try await server.request("GET", "/harp-devcloud/stats")
        #expect(stats.text.contains("\"bytesSent\":1048593") && stats.text.contains("\"bob\":1048592"))
        await server.stop()
    }

    @Test("the egress limiter hands out consecutive time slots (accounting, no clock)")
    func egressAccounting() {
        let limiter = EgressLimiter(bytesPerSecond: 1000)
        #expect(limiter.reserve(bytes: 500, now: 10) == 0.5)
        #expect(limiter.reserve(bytes: 500, now: 10) == 1.0)  // queued behind the first
        #expect(limiter.reserve(bytes: 1000, now: 20) == 1.0)  // the link was idle: no backlog
        #expect(limiter.accounting.bytesGranted == 2000)
        #expect(limiter.accounting.delaySeconds == 0.5)
    }

    @Test("with an egress limit a download is not faster than the limit")
    func egressLimitHonoured() async throws {
        let server = try await TestServer(egress: 512 * 1024, folders: ["alice": ["E"]])
        _ = try await server.request(
            "PUT", "/remote.php/dav/files/alice/E/x.bin", as: "alice", body: [UInt8](repeating: 7, count: 256 * 1024))
        let clock = ContinuousClock()
        let start = clock.now
        let result = try await server.request("GET", "/remote.php/dav/files/alice/E/x.bin", as: "alice")
        let elapsed = clock.now - start
        #expect(result.body.count == 256 * 1024)
        // 256 KiB at 512 KiB/s: at least ~0.5 s less one chunk of slack; an upper bound is not asserted.
        #expect(elapsed >= .milliseconds(400))
        let granted: Int64 = server.server.egress?.accounting.bytesGranted ?? -1
        #expect(granted == 262_144)
        await server.stop()
    }

    @Test("Login Flow v2: 404 [] until granted, 200 once with the app password, then 404 again")
    func loginFlow() async throws {
        let server = try await TestServer(folders: ["alice": ["F"]])
        let start = try await server.request("POST", "/index.php/login/v2", headers: [("User-Agent", "harp-test")])
        #expect(start.status == 200)
        guard case .string(let token)? = OCSValue.parse(json: start.text)?["poll"]?["token"],
            case .string(let endpoint)? = OCSValue.parse(json: start.text)?["poll"]?["endpoint"],
            case .string(let login)? = OCSValue.parse(json: start.text)?["login"]
        else {
            Issue.record("bad start body \(start.text)")
            return
        }
        #expect(token.count == 128 && endpoint == "\(server.server.baseURL)/index.php/login/v2/poll")
        let poll = { try await server.request("POST", "/index.php/login/v2/poll", body: Array("token=\(token)".utf8)) }
        let before = try await poll()
        #expect(before.status == 404 && before.text == "[]")
        let page = try await server.request("GET", String(login.dropFirst(server.server.baseURL.count)))
        #expect(page.status == 200 && page.text.contains("<form"))
        #expect(server.server.grantLoginFlow(user: "alice"))
        let granted = try await poll()
        #expect(granted.status == 200)
        guard case .string(let appPassword)? = OCSValue.parse(json: granted.text)?["appPassword"] else {
            Issue.record("no app password in \(granted.text)")
            return
        }
        #expect(appPassword.count == 72)
        #expect(try await poll().status == 404)
        #expect(
            try await server.request(
                "PROPFIND", "/remote.php/dav/files/alice/F", as: "alice", password: appPassword,
                headers: [("Depth", "0")]
            ).status == 207)
        let bearer = try await server.request(
            "GET", "/ocs/v2.php/cloud/user?format=json",
            headers: [("Authorization", "Bearer \(appPassword)"), ("OCS-APIRequest", "true")])
        #expect(bearer.status == 200 && bearer.text.contains("\"id\":\"alice\""))
        await server.stop()
    }

    @Test("auto-grant: a flow started on a server configured for it is granted at once")
    func loginFlowAutoGrant() async throws {
        let server = try await TestServer(autoGrant: "bob")
        let start = try await server.request("POST", "/index.php/login/v2")
        guard case .string(let token)? = OCSValue.parse(json: start.text)?["poll"]?["token"] else {
            Issue.record("bad start body")
            return
        }
        let poll = try await server.request("POST", "/index.php/login/v2/poll", body: Array("token=\(token)".utf8))
        #expect(poll.status == 200 && poll.text.contains("\"loginName\":\"bob\""))
        await server.stop()
    }

    @Test("app passwords: exchanged for the account password, refused with an app password, deleted on logout")
    func appPasswords() async throws {
        let server = try await TestServer(folders: ["bob": ["F"]])
        let ocs = [("OCS-APIRequest", "true")]
        let exchange = try await server.request(
            "GET", "/ocs/v2.php/core/getapppassword?format=json", as: "bob", headers: ocs)
        guard case .string(let appPassword)? = OCSValue.parse(json: exchange.text)?["ocs"]?["data"]?["apppassword"]
        else {
            Issue.record("no app password in \(exchange.text)")
            return
        }
        #expect(
            try await server.request(
                "GET", "/ocs/v2.php/core/getapppassword?format=json", as: "bob", password: appPassword, headers: ocs
            ).status == 403)
        #expect(
            try await server.request("GET", "/ocs/v2.php/cloud/user", as: "bob", password: appPassword).status == 412)
        #expect(
            try await server.request(
                "DELETE", "/ocs/v2.php/core/apppassword?format=json", as: "bob", password: appPassword, headers: ocs
            ).status == 200)
        #expect(
            try await server.request(
                "PROPFIND", "/remote.php/dav/files/bob/F", as: "bob", password: appPassword, headers: [("Depth", "0")]
            ).status == 401)
        await server.stop()
    }

    @Test("admin endpoints: users, shares, faults, brute-force reset and Login Flow grant over HTTP")
    func adminEndpoints() async throws {
        let server = try await TestServer(folders: ["alice": ["Shared"]])
        let json = [("Content-Type", "application/json")]
        #expect(
            try await server.request(
                "POST", "/harp-devcloud/users", headers: json,
                body: Array(#"{"name":"dave","password":"dave-pw","quotaBytes":5000}"#.utf8)
            ).status == 200)
        #expect(
            try await server.request(
                "PROPFIND", "/remote.php/dav/files/dave/", as: "dave", password: "dave-pw", headers: [("Depth", "0")]
            ).status == 207)
        let share = try await server.request(
            "POST", "/harp-devcloud/shares", headers: json,
            body: Array(#"{"owner":"alice","path":"/Shared","sharee":"dave","permissions":1}"#.utf8))
        #expect(share.status == 200 && share.text.contains("\"id\":"))
        #expect(
            try await server.request(
                "PROPFIND", "/remote.php/dav/files/dave/Shared", as: "dave", password: "dave-pw",
                headers: [("Depth", "0")]
            ).status == 207)
        let badShare = try await server.request(
            "POST", "/harp-devcloud/shares", headers: json,
            body: Array(#"{"owner":"alice","path":"/Nope","sharee":"dave","permissions":1}"#.utf8))
        #expect(badShare.status == 400)
        #expect(
            try await server.request(
                "POST", "/harp-devcloud/faults", headers: json,
                body: Array(#"{"status":503,"count":1,"pathPrefix":"/status.php"}"#.utf8)
            ).status == 200)
        #expect(try await server.request("GET", "/status.php").status == 503)
        #expect(try await server.request("GET", "/status.php").status == 200)
        for _ in 0..<11 {
            _ = try await server.request("GET", "/remote.php/dav/files/alice/", as: "alice", password: "nope")
        }
        #expect(try await server.request("GET", "/remote.php/dav/files/alice/Shared", as: "alice").status == 429)
        #expect(try await server.request("POST", "/harp-devcloud/bruteforce/reset").status == 200)
        #expect(
            try await server.request(
                "PROPFIND", "/remote.php/dav/files/alice/Shared", as: "alice", headers: [("Depth", "0")]
            ).status == 207)
        let start = try await server.request("POST", "/index.php/login/v2")
        #expect(start.status == 200)
        #expect(
            try await server.request(
                "POST", "/harp-devcloud/loginflow/grant", headers: json, body: Array(#"{"user":"alice"}"#.utf8)
            ).status == 200)
        #expect(
            try await server.request(
                "POST", "/harp-devcloud/loginflow/grant", headers: json, body: Array(#"{"user":"alice"}"#.utf8)
            ).status == 404)
        #expect(
            try await server.request("POST", "/harp-devcloud/users", headers: json, body: Array("not json".utf8)).status
                == 400)
        await server.stop()
    }

    @Test("state survives a restart: fileids, etags, shares and app passwords are in SQLite")
    func persistence() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "devcloud-persist-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(
            at: directory.appendingPathComponent("files/alice/P"), withIntermediateDirectories: true)
        let configuration = DevCloudConfiguration(
            dataDirectory: directory.path,
            users: [.init(name: "alice", password: "a-pw"), .init(name: "bob", password: "b-pw")],
            shares: [.init(owner: "alice", path: "/P", sharee: "bob", permissions: 1)])
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let first = DevCloudServer(configuration: configuration, logger: logger)
        let port1 = try await first.start()
        let put = try await RawHTTP.send(
            port: port1, method: "PUT", path: "/remote.php/dav/files/alice/P/x.txt",
            headers: [TestServer.basic("alice", "a-pw")], body: Array("x".utf8))
        let exchange = try await RawHTTP.send(
            port: port1, method: "GET", path: "/ocs/v2.php/core/getapppassword?format=json",
            headers: [TestServer.basic("bob", "b-pw"), ("OCS-APIRequest", "true")])
        await first.stop()
        guard case .string(let appPassword)? = OCSValue.parse(json: exchange.text)?["ocs"]?["data"]?["apppassword"]
        else {
            Issue.record("no app password")
            return
        }
        let second = DevCloudServer(configuration: configuration, logger: logger)
        let port2 = try await second.start()
        let head = try await RawHTTP.send(
            port: port2, method: "HEAD", path: "/remote.php/dav/files/bob/P/x.txt",
            headers: [TestServer.basic("bob", appPassword)])
        #expect(head.status == 200)
        #expect(head.header("ETag") == put.header("ETag"))
        let propfind = try await RawHTTP.send(
            port: port2, method: "PROPFIND", path: "/remote.php/dav/files/alice/P/x.txt",
            headers: [TestServer.basic("alice", "a-pw"), ("Depth", "0")],
            body: Array(
                #"<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><oc:id/></d:prop></d:propfind>"#
                    .utf8))
        #expect(propfind.text.contains(try #require(put.header("OC-FileId"))))
        await second.stop()
    }

    @Test("a configuration that cannot be applied, or an unusable data directory, is reported by start()")
    func badConfiguration() async throws {
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "devcloud-bad-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let unknownSharee = DevCloudServer(
            configuration: .init(
                dataDirectory: directory.path, users: [.init(name: "alice", password: "pw")],
                shares: [.init(owner: "alice", path: "/X", sharee: "nobody", permissions: 1)]),
            logger: logger)
        await #expect(throws: DevCloudError.self) { _ = try await unknownSharee.start() }
        let file = directory.appendingPathComponent("plain-file")
        #expect(FileManager.default.createFile(atPath: file.path, contents: Data("x".utf8)))
        let unusable = DevCloudServer(configuration: .init(dataDirectory: file.path), logger: logger)
        await #expect(throws: DevCloudError.self) { _ = try await unusable.start() }
        let remote = DevCloudServer(
            configuration: .init(dataDirectory: directory.appendingPathComponent("ok").path), logger: logger)
        await #expect(throws: DevCloudError.self) { _ = try await remote.start(host: "0.0.0.0") }
    }

    @Test("passwords never appear in the logs")
    func noSecretsInLogs() async throws {
        let sink = LogSink()
        let logger = Logger(label: "capture") { _ in CapturingLogHandler(sink: sink) }
        let server = try await TestServer(folders: ["alice": ["F"]], logger: logger)
        _ = try await server.request(
            "PROPFIND", "/remote.php/dav/files/alice/F", as: "alice", password: "hunter2-wrong",
            headers: [("Depth", "0")])
        _ = try await server.request("PUT", "/remote.php/dav/files/alice/F/a", as: "alice", body: Array("a".utf8))
        let exchange = try await server.request(
            "GET", "/ocs/v2.php/core/getapppassword?format=json", as: "alice", headers: [("OCS-APIRequest", "true")])
        _ = try await server.request(
            "POST", "/harp-devcloud/users", headers: [], body: Array(#"{"name":"eve","password":"eve-secret-pw"}"#.utf8)
        )
        await server.stop()
        let all = sink.lines.withLock { $0 }.joined(separator: "\n")
        #expect(!all.isEmpty)
        for secret in [
            "hunter2-wrong", TestServer.passwords["alice"]!, "eve-secret-pw",
            exchange.text.components(separatedBy: "\"apppassword\":\"").last?.prefix(72).description ?? "x",
        ] {
            #expect(!all.contains(secret))
        }
    }
}

/// Keeps every log line (message and all metadata) in memory.
final class LogSink: Sendable {
    let lines = Mutex<[String]>([])
}

struct CapturingLogHandler: LogHandler {
    let sink: LogSink
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        let line =
            "\(event.level) \(event.message) \(all.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")) \(event.error.map { "\($0)" } ?? "")"
        sink.lines.withLock { $0.append(line) }
    }
}
