import HarpHTTP
import HarpTestHTTPServer
import Testing

/// The bounded client against scripted servers on loopback: every bound ends the exchange with an error and closes the
/// connection while the server still has most of its bytes to write.
@Suite("Bounded HTTP client")
struct BoundedHTTPClientTests {
    static let piece = [UInt8](repeating: 0x61, count: 64 << 10)
    /// 64 MiB in 64 KiB pieces: far above what the kernel buffers between two loopback sockets.
    static let pieces = 1024
    static let client = BoundedHTTPClient(limits: .init(maximumBody: 16 << 10, deadline: .seconds(30)))

    @Test func aSmallAnswerComesBackWithItsStatusHeadersAndBody() async throws {
        let server = ScriptedServer(
            head: ScriptedServer.head("201 Created", ["Content-Length: 5", "X-Answer: yes"]) + Array("hello".utf8))
        try await server.run { base, outcomes in
            let response = try await Self.client.send(
                "POST", base + "/add-checkpoint?x=1", headers: [("Content-Type", "text/plain")],
                body: Array("old 0\n".utf8))
            #expect(response.status == 201)
            #expect(response.header("x-answer") == "yes")
            #expect(response.body == Array("hello".utf8))
            let outcome = try await firstReport(of: outcomes, within: 30, "the server's report")
            #expect(outcome.requestText.hasPrefix("POST /add-checkpoint?x=1 HTTP/1.1\r\n"))
            #expect(outcome.requestText.contains("Content-Length: 6\r\n"))
            #expect(outcome.requestText.contains("Content-Type: text/plain\r\n"))
            #expect(outcome.requestText.hasSuffix("\r\n\r\nold 0\n"))
        }
    }

    @Test func aCloseDelimitedAndAChunkedAnswerWork() async throws {
        let closeDelimited = ScriptedServer(head: ScriptedServer.head("404 Not Found", []) + Array("gone".utf8))
        try await closeDelimited.run { base, _ in
            let response = try await Self.client.send("GET", base + "/v1/log/proof")
            #expect(response.status == 404 && response.body == Array("gone".utf8))
        }
        let chunked = ScriptedServer(
            head: ScriptedServer.head("200 OK", ["Transfer-Encoding: chunked"])
                + Array("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n".utf8))
        try await chunked.run { base, _ in
            let response = try await Self.client.send("GET", base + "/")
            #expect(response.status == 200 && response.body == Array("abcde".utf8))
        }
    }

    /// Content-Length of 1 GiB, then 64 MiB written: refused at the head, the connection closed at once.
    @Test func aHugeContentLengthIsRefusedAndTheConnectionClosed() async throws {
        let server = ScriptedServer(
            head: ScriptedServer.head("200 OK", ["Content-Length: \(1 << 30)"]), piece: Self.piece, pieces: Self.pieces)
        try await Self.expectRefusalWhileWriting(server, .bodyTooLarge(limit: 16 << 10))
    }

    /// An endless chunked body (64 MiB of 64 KiB chunks): refused once past the bound.
    @Test func anEndlessChunkedBodyIsCutAtTheBound() async throws {
        let chunk = Array("10000\r\n".utf8) + Self.piece + Array("\r\n".utf8)
        let server = ScriptedServer(
            head: ScriptedServer.head("200 OK", ["Transfer-Encoding: chunked"]), piece: chunk, pieces: Self.pieces)
        try await Self.expectRefusalWhileWriting(server, .bodyTooLarge(limit: 16 << 10))
    }

    /// A body without a length that does not end: refused once past the bound.
    @Test func anEndlessCloseDelimitedBodyIsCutAtTheBound() async throws {
        let server = ScriptedServer(head: ScriptedServer.head("200 OK", []), piece: Self.piece, pieces: Self.pieces)
        try await Self.expectRefusalWhileWriting(server, .bodyTooLarge(limit: 16 << 10))
    }

    /// Headers that never end (64 MiB of 1 KiB header lines): refused past the head bound.
    @Test func endlessHeadersAreRefused() async throws {
        let line = Array(("X-Filler: " + String(repeating: "f", count: 1012) + "\r\n").utf8)
        let server = ScriptedServer(
            head: Array("HTTP/1.1 200 OK\r\n".utf8), piece: line, pieces: 64 * Self.pieces)
        try await Self.expectRefusalWhileWriting(server, .headTooLarge(limit: 16 << 10))
    }

    /// A status line that never ends: refused past the head bound (the decoder's own header limits do not see it).
    @Test func anEndlessStatusLineIsRefused() async throws {
        let server = ScriptedServer(head: Array("HTTP/1.1 200 ".utf8), piece: Self.piece, pieces: Self.pieces)
        try await Self.expectRefusalWhileWriting(server, .headTooLarge(limit: 16 << 10))
    }

    @Test func headersOverTheBoundAreRefused() async throws {
        let server = ScriptedServer(
            head: ScriptedServer.head(
                "200 OK", ["Content-Length: 0", "X-Big: " + String(repeating: "b", count: 20_000)]))
        try await server.run { base, _ in
            await #expect(throws: BoundedHTTPError.headTooLarge(limit: 16 << 10)) {
                try await Self.client.send("GET", base + "/")
            }
        }
    }

    @Test func aStalledAnswerEndsAtTheDeadline() async throws {
        let server = ScriptedServer(head: ScriptedServer.head("200 OK", ["Content-Length: 10"]), stall: true)
        let client = BoundedHTTPClient(limits: .init(maximumBody: 16, deadline: .milliseconds(500)))
        try await server.run { base, outcomes in
            await #expect(throws: BoundedHTTPError.timedOut(.milliseconds(500))) {
                try await client.send("GET", base + "/")
            }
            // The server sees the hang-up: the connection was closed, not left open (an outcome is reported only once
            // the connection ended; `first` fails after 30 s without one). Under load the client's deadline can pass
            // before the server wrote its head, whose write then fails: that is the same hang-up, seen earlier.
            let outcome = try await firstReport(of: outcomes, within: 30, "the stalled connection's close")
            #expect(outcome.written == 0)
        }
    }

    @Test func aBodyExactlyAtTheBoundIsKept() async throws {
        let body = [UInt8](repeating: 0x62, count: 16 << 10)
        let server = ScriptedServer(head: ScriptedServer.head("200 OK", ["Content-Length: \(body.count)"]) + body)
        try await server.run { base, _ in
            let response = try await Self.client.send("GET", base + "/")
            #expect(response.body == body)
        }
    }

    @Test func aURLThatIsNotHTTPIsRefused() async throws {
        await #expect(throws: BoundedHTTPError.badURL("ftp://127.0.0.1/")) {
            try await Self.client.send("GET", "ftp://127.0.0.1/")
        }
    }

    /// Runs `server`, expects `error` from the client, and that the server could not write everything: the client
    /// closed the connection at the bound instead of reading on.
    static func expectRefusalWhileWriting(_ server: ScriptedServer, _ error: BoundedHTTPError) async throws {
        try await server.run { base, outcomes in
            await #expect(throws: error) { try await client.send("GET", base + "/") }
            let outcome = try await firstReport(of: outcomes, within: 60, "the hostile server's report")
            #expect(!outcome.complete, "the server wrote all \(server.total) bytes: the client read on past its bound")
            #expect(outcome.written < server.total)
        }
    }
}
