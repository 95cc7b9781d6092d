import Foundation
import HarpTestHTTPServer
import Testing

@testable import HarpClient

/// `LogHTTP` against scripted log servers on loopback: its answers are bounded (the connection closed at the bound)
/// and a 429 is still waited out.
@Suite("LogHTTP bounds")
struct LogHTTPBoundTests {
    @Test func anEndlessAnswerIsCutOffAtTheLimit() async throws {
        let piece = Array("10000\r\n".utf8) + [UInt8](repeating: 0x61, count: 64 << 10) + Array("\r\n".utf8)
        let head = Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        // 64 MiB: far more than the kernel buffers between two loopback sockets.
        let server = ScriptedServer(head: head, piece: piece, pieces: 1024)
        try await server.run { base, outcomes in
            let http = try #require(LogHTTP(signalURL: base.replacingOccurrences(of: "http://", with: "ws://")))
            await #expect {
                _ = try await http.request("GET", "/v1/log/head?lineage=00")
            } throws: { error in
                (error as? LogHTTPError)?.description == "answer over \(64 << 10) bytes"
            }
            let outcome = try await firstReport(of: outcomes, within: 60, "the scripted log server's report")
            #expect(!outcome.complete, "the server wrote all 64 MiB: LogHTTP read on past its limit")
        }
    }

    @Test func aRateLimitedAnswerIsWaitedOutAndASmallAnswerComesBack() async throws {
        let tooMany = Array("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n".utf8)
        let ok = Array("HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"leafIndex\":7}".utf8)
        let server = ScriptedServer { connection in .init(head: connection < 2 ? tooMany : ok) }
        try await server.run { base, outcomes in
            let http = try #require(LogHTTP(signalURL: base + "/v1/ws"))
            let answer = try await http.request("POST", "/v1/log/append", body: Data([1, 2, 3]))
            #expect(answer.status == 200)
            #expect(answer.json?["leafIndex"] as? Int == 7)
            for _ in 0..<3 {
                let outcome = try await firstReport(of: outcomes, within: 60, "the scripted log server's report")
                #expect(outcome.requestText.hasPrefix("POST /v1/log/append HTTP/1.1"))
            }
        }
    }
}
