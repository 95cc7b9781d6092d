import Foundation
import Synchronization
import Testing

@testable import NextcloudClient

/// The libcurl transport against a real HTTP/1.1 server on 127.0.0.1.
@Suite("Transport over loopback")
struct TransportTests {
    static let file = TestClients.bytes(4096)

    /// Serves `file` at any GET, honouring one `Range: bytes=a-b`.
    static func rangeServer(ignoreRange: Bool = false, wrongContentRange: Bool = false) -> TestHTTPServer {
        TestHTTPServer { request in
            guard request.method == "GET" else { return .respond(405) }
            let etag = [("ETag", "\"e1\""), ("OC-ETag", "\"e1\"")]
            if let ifMatch = request.headers[.ifMatch], ifMatch != "\"e1\"" {
                return .closeDelimited(412, body: Array("<d:error xmlns:d=\"DAV:\"/>".utf8))
            }
            guard !ignoreRange, let range = request.headers[.range], range.hasPrefix("bytes=") else {
                return .respond(200, headers: etag, body: file)
            }
            let ends = range.dropFirst(6).split(separator: "-").compactMap { Int($0) }
            guard ends.count == 2, ends[0] < file.count else { return .respond(416) }
            let last = min(ends[1], file.count - 1)
            let shownFirst = wrongContentRange ? ends[0] + 1 : ends[0]
            return .respond(
                206, headers: etag + [("content-range", "bytes \(shownFirst)-\(last)/\(file.count)")],
                body: Array(file[ends[0]...last]))
        }
    }

    @Test func rangeGetWritesOnlyTheRangeAndSendsOneRange() async throws {
        let server = Self.rangeServer()
        let base = try await server.start()
        defer { Task { await server.stop() } }
        let client = TestClients.client(base)
        for (first, last) in [(0, 15), (2000, 2047), (4095, 4095)] {
            let range = try #require(ByteRange(first: Int64(first), last: Int64(last)))
            let (data, info) = try await client.data(at: "/Footage/clip.bin", range: range, ifMatch: "\"e1\"")
            #expect(Array(data) == Array(Self.file[first...last]))
            #expect(info.status == 206)
            #expect(info.range == range)
            #expect(info.totalSize == 4096)
            #expect(info.etag == "\"e1\"")
        }
        let sent = server.requests
        #expect(sent.map { $0.headers[.range] } == ["bytes=0-15", "bytes=2000-2047", "bytes=4095-4095"])
        #expect(sent.allSatisfy { $0.headers[.ifMatch] == "\"e1\"" })
        #expect(sent.allSatisfy { $0.basicAuth?.user == "alice" && $0.basicAuth?.password == TestClients.password })
        #expect(sent[0].target == "/remote.php/dav/files/alice/Footage/clip.bin")
        // One connection for all three requests.
        #expect(server.connectionCount == 1)
    }

    @Test func pathsUseTheUserIDAndAuthUsesTheLoginName() async throws {
        let body = try Fixture.named("004").body
        let server = TestHTTPServer { request in
            let xml = String(decoding: body, as: UTF8.self).replacingOccurrences(
                of: "/files/alice/", with: "/files/uid-42/")
            return .respond(207, body: Array(xml.utf8))
        }
        let base = try await server.start()
        defer { Task { await server.stop() } }
        let client = NextcloudClient(
            credentials: Credentials(
                server: URL(string: base)!, user: "alice@example.com", appPassword: "pw", userID: "uid-42"),
            options: TestClients.options())
        let (folder, children) = try await client.list("/Footage")
        #expect(folder.path == "/Footage")
        #expect(children.count == 2)
        let request = try #require(server.requests.first)
        #expect(request.target == "/remote.php/dav/files/uid-42/Footage")
        #expect(request.basicAuth?.user == "alice@example.com")
    }

    @Test func rangeEndPastEndOfFileIsClipped() async throws {
        let server = Self.rangeServer()
        let base = try await server.start()
        defer { Task { await server.stop() } }
        let (data, info) = try await TestClients.client(base).data(at: "/f", range: ByteRange(first: 4090, last: 9999))
        #expect(data.count == 6)
        #expect(info.range == ByteRange(first: 4090, last: 4095))
    }

    @Test func a200ToARangeRequestIsNeverWrittenAsTheRange() async throws {
        let server = Self.rangeServer(ignoreRange: true)
        let base = try await server.start()
        defer { Task { await server.stop() } }
        let sink = DataSink()
        do {
            try await TestClients.client(base).download("/f", range: ByteRange(first: 0, last: 15), into: sink)
            Issue.record("a 200 was accepted as a range")
        } catch let error as NextcloudError {
            #expect(error.kind == .malformedResponse)
            #expect(error.status == 200)
        }
        #expect(sink.data.isEmpty)
    }

    @Test func a206WithAnotherContentRangeIsRefused() async throws {
        let server = Self.rangeServer(wrongContentRange: true)
        let base = try await server.start()
        defer { Task { await server.stop() } }
        let sink = DataSink()
        await #expect(throws: NextcloudError.self) {
            try await TestClients.client(base).download("/f", range: ByteRange(first: 10, last: 20), into: sink)
        }
        #expect(sink.data.isEmpty)
    }

    @Test func rangeBeyondEndAndStaleIfMatch() async throws {
        let server = Self.rangeServer()
        let base = try await server.start()
        defer { Task { await server.stop() } }
        let client = TestClients.client(base)
        await #expect(throws: NextcloudError(.rangeNotSatisfiable, status: 416, path: "/f")) {
            _ = try await client.data(at: "/f", range: ByteRange(first: 5000, last: 5001))
        }
        let sink = DataSink()
        do {
            try await client.download("/f", ifMatch: "\"stale\"", into: sink)
            Issue.record("stale If-Match accepted")
        } catch let error as NextcloudError {
            #expect(error.kind == .preconditionFailed)
        }
        #expect(sink.data.isEmpty)
    }

    @Test func fileRangeSinkWritesAtItsOffset() async throws {
        let server = Self.rangeServer()
        let base = try await server.start()
        defer { Task { await server.stop() } }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("harp-range-\(UUID().uuidString)").path
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
        try #require(fd >= 0)
        defer {
            close(fd)
            unlink(path)
        }
        let client = TestClients.client(base)
        for offset in stride(from: 0, to: 4096, by: 1024).reversed() {
            let sink = FileRangeSink(descriptor: fd, offset: Int64(offset))
            try await client.download("/f", range: ByteRange(offset: Int64(offset), length: 1024), into: sink)
            #expect(sink.nextOffset == Int64(offset + 1024))
        }
        let written = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(Array(written) == Self.file)
    }

    @Test func serverErrorsAreRetriedThenSucceed() async throws {
        let calls = Mutex(0)
        let server = TestHTTPServer { _ in
            let n = calls.withLock {
                $0 += 1; return $0
            }
            return n <= 2 ? .closeDelimited(503, body: Array("busy".utf8)) : .respond(200, body: Array("ok".utf8))
        }
        let base = try await server.start()
        defer { Task { await server.stop() } }
        let (data, _) = try await TestClients.client(base).data(at: "/f")
        #expect(String(decoding: data, as: UTF8.self) == "ok")
        #expect(calls.withLock { $0 } == 3)
    }

    @Test func retriesAreBounded() async throws {
        let server = TestHTTPServer { _ in .respond(502) }
        let base = try await server.start()
        defer { Task { await server.stop() } }
        await #expect(throws: NextcloudError(.serverError, status: 502, path: "/f")) {
            _ = try await TestClients.client(base, attempts: 3).data(at: "/f")
        }
        #expect(server.requests.count == 3)
    }

    @Test func nonIdempotentRequestsAreNotRetried() async throws {
        let server = TestHTTPServer { _ in .respond(503) }
        let base = try await server.start()
        defer { Task { await server.stop() } }
        await #expect(throws: NextcloudError.self) { try await TestClients.client(base).makeFolder("/new") }
        #expect(server.requests.count == 1)
        #expect(server.requests[0].method == "MKCOL")
    }

    @Test func badCredentialsAreNeverRetried() async throws {
        let server = TestHTTPServer { _ in
            .closeDelimited(401, body: Array(sabreError("NotAuthenticated", "Username or password was incorrect")))
        }
        let base = try await server.start()
        defer { Task { await server.stop() } }
        do {
            _ = try await TestClients.client(base, attempts: 5).item(at: "/Footage")
            Issue.record("401 accepted")
        } catch let error as NextcloudError {
            #expect(error.kind == .badCredentials)
            #expect(error.detail == "Username or password was incorrect")
        }
        #expect(server.requests.count == 1)
    }

    @Test func afterA401NothingMoreIsSentWithTheSameCredentials() async throws {
        let server = TestHTTPServer { _ in .respond(401) }
        let base = try await server.start()
        defer { Task { await server.stop() } }
        let client = TestClients.client(base)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<5 {
                group.addTask {
                    await #expect(throws: NextcloudError.self) { _ = try await client.item(at: "/a") }
                }
            }
            try await group.waitForAll()
        }
        let sentInParallel = server.requests.count
        #expect(client.credentialsWereRejected)
        for _ in 0..<5 {
            await #expect(throws: NextcloudError.self) { _ = try await client.data(at: "/b") }
        }
        #expect(server.requests.count == sentInParallel)
        #expect(sentInParallel <= 5)
    }

    @Test func throttlingIsReportedAndNotRetried() async throws {
        let body = try Fixture.named("126").body
        let server = TestHTTPServer { _ in .closeDelimited(429, body: Array(body)) }
        let base = try await server.start()
        defer { Task { await server.stop() } }
        do {
            _ = try await TestClients.client(base).item(at: "/Footage")
            Issue.record("429 accepted")
        } catch let error as NextcloudError {
            #expect(error.kind == .throttled)
            #expect(error.description.contains("429"))
        }
        #expect(server.requests.count == 1)
    }

    @Test func networkFailureIsTyped() async throws {
        // A port that was just free: bind, read it, close.
        let server = TestHTTPServer { _ in .respond(200) }
        let base = try await server.start()
        await server.stop()
        do {
            _ = try await TestClients.client(base, attempts: 2).data(at: "/f")
            Issue.record("connected to a closed port")
        } catch let error as NextcloudError {
            #expect(error.kind == .network)
        }
    }

    @Test func tlsFailureIsTyped() async throws {
        let server = TestHTTPServer { _ in .respond(200) }
        let base = try await server.start()
        defer { Task { await server.stop() } }
        let https = base.replacingOccurrences(of: "http://", with: "https://")
        do {
            _ = try await TestClients.client(https, attempts: 1).data(at: "/f")
            Issue.record("TLS to a plain HTTP server succeeded")
        } catch let error as NextcloudError {
            #expect(error.kind == .tls)
        }
    }

    @Test func onlyHTTPAndHTTPSAreSpoken() async throws {
        let client = TestClients.client("file:///etc")
        do {
            _ = try await client.data(at: "/passwd")
            Issue.record("a file:// URL was read")
        } catch let error as NextcloudError {
            #expect(error.kind == .malformedResponse)
        }
    }

    @Test func caBundleComesFromTheCurlEnvironment() {
        #expect(
            TransportOptions(environment: ["CURL_CA_BUNDLE": "/a.pem", "SSL_CERT_FILE": "/b.pem"]).caBundle == "/a.pem")
        #expect(TransportOptions(environment: ["SSL_CERT_FILE": "/b.pem"]).caBundle == "/b.pem")
        #expect(TransportOptions(environment: ["CURL_CA_BUNDLE": ""]).caBundle == nil)
        #expect(TransportOptions(environment: ["SSL_CERT_DIR": "/certs"]).caPath == "/certs")
    }

    @Test func retryDelaysGrowAndStayBounded() {
        let policy = RetryPolicy(maximumAttempts: 5, baseDelay: .milliseconds(100), maximumDelay: .milliseconds(300))
        for _ in 0..<50 {
            let first = policy.delay(beforeRetry: 1)
            #expect(first >= .milliseconds(50) && first <= .milliseconds(100))
            let third = policy.delay(beforeRetry: 3)
            #expect(third >= .milliseconds(150) && third <= .milliseconds(300))
        }
    }

    @Test func droppedConnectionIsRetriedForGet() async throws {
        let calls = Mutex(0)
        let server = TestHTTPServer { _ in
            calls.withLock {
                $0 += 1; return $0
            } == 1 ? .drop : .respond(200, body: [1, 2, 3])
        }
        let base = try await server.start()
        defer { Task { await server.stop() } }
        let (data, _) = try await TestClients.client(base).data(at: "/f")
        #expect(Array(data) == [1, 2, 3])
    }

    @Test func cancellingTheTaskAbortsAStalledTransfer() async throws {
        let server = TestHTTPServer { _ in .stall(200, announcedLength: 1 << 30, first: [1, 2, 3, 4]) }
        let base = try await server.start()
        defer { Task { await server.stop() } }
        let client = TestClients.client(base)
        let sink = SignallingSink()
        let task = Task { try await client.download("/big", into: sink) }
        var iterator = sink.firstBytes.makeAsyncIterator()
        _ = await iterator.next()
        task.cancel()
        let result = await task.result
        #expect(throws: CancellationError.self) { try result.get() }
        #expect(sink.inner.data.count == 4)
    }

    @Test func aStalledTransferTimesOut() async throws {
        let server = TestHTTPServer { _ in .stall(200, announcedLength: 1 << 20, first: [9]) }
        let base = try await server.start()
        defer { Task { await server.stop() } }
        var options = TestClients.options(attempts: 1)
        options.lowSpeedSeconds = 1
        let client = NextcloudClient(
            credentials: Credentials(server: URL(string: base)!, user: "alice", appPassword: "x"), options: options)
        do {
            _ = try await client.data(at: "/slow")
            Issue.record("a stalled transfer completed")
        } catch let error as NextcloudError {
            #expect(error.kind == .network)
            #expect(error.detail?.hasPrefix("timed out") == true)
        }
    }

    @Test func closeDelimitedErrorBodiesAreRead() async throws {
        let body = try Fixture.named("011").body
        let server = TestHTTPServer { _ in
            .closeDelimited(404, headers: [("Content-Type", "application/xml")], body: Array(body))
        }
        let base = try await server.start()
        defer { Task { await server.stop() } }
        do {
            _ = try await TestClients.client(base, user: "carol").propfind("/Footage", depth: .zero)
            Issue.record("404 accepted")
        } catch let error as NextcloudError {
            #expect(error.kind == .notFoundOrNoAccess)
            #expect(error.detail == "File not found: Footage in 'alice'")
            #expect(error.description.contains("no access"))
        }
    }

    @Test func propfindSendsDepthAndParsesTheAnswer() async throws {
        let body = try Fixture.named("004").body
        let server = TestHTTPServer { _ in
            .respond(207, headers: [("Content-Type", "application/xml; charset=utf-8")], body: Array(body))
        }
        let base = try await server.start()
        defer { Task { await server.stop() } }
        let (folder, children) = try await TestClients.client(base).list("/Footage")
        #expect(folder.fileID == 97)
        #expect(children.map(\.name) == ["clip1.mp4", "big-chunked.bin"])
        let request = try #require(server.requests.first)
        #expect(request.method == "PROPFIND")
        #expect(request.headers[.depth] == "1")
        #expect(String(decoding: request.body, as: UTF8.self).contains("http://owncloud.org/ns"))
    }
}

func sabreError(_ exception: String, _ message: String) -> Data {
    Data(
        """
        <?xml version="1.0" encoding="utf-8"?>
        <d:error xmlns:d="DAV:" xmlns:s="http://sabredav.org/ns">
          <s:exception>Sabre\\DAV\\Exception\\\(exception)</s:exception>
          <s:message>\(message)</s:message>
        </d:error>
        """.utf8)
}
