import Foundation
import NIOCore
import NIOPosix
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
        let server = ScriptedLog { _ in (head, piece, 1024) }
        try await server.run { base, outcomes in
            let http = try #require(LogHTTP(signalURL: base.replacingOccurrences(of: "http://", with: "ws://")))
            await #expect {
                _ = try await http.request("GET", "/v1/log/head?lineage=00")
            } throws: { error in
                (error as? LogHTTPError)?.description == "answer over \(64 << 10) bytes"
            }
            let outcome = try await firstOutcome(of: outcomes, within: 60)
            #expect(!outcome.complete, "the server wrote all 64 MiB: LogHTTP read on past its limit")
        }
    }

    @Test func aRateLimitedAnswerIsWaitedOutAndASmallAnswerComesBack() async throws {
        let tooMany = Array("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n".utf8)
        let ok = Array("HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"leafIndex\":7}".utf8)
        let server = ScriptedLog { connection in (connection < 2 ? tooMany : ok, [], 0) }
        try await server.run { base, outcomes in
            let http = try #require(LogHTTP(signalURL: base + "/v1/ws"))
            let answer = try await http.request("POST", "/v1/log/append", body: Data([1, 2, 3]))
            #expect(answer.status == 200)
            #expect(answer.json?["leafIndex"] as? Int == 7)
            for _ in 0..<3 {
                let outcome = try await firstOutcome(of: outcomes, within: 60)
                #expect(outcome.requestHead.hasPrefix("POST /v1/log/append HTTP/1.1"))
            }
        }
    }
}

/// An HTTP server on 127.0.0.1, port 0: connection N (from 0) is answered with `script(N)`'s head, then its piece
/// that many times; each connection reports whether it could write everything.
struct ScriptedLog: Sendable {
    let script: @Sendable (Int) -> (head: [UInt8], piece: [UInt8], pieces: Int)

    struct Outcome: Sendable {
        var requestHead: String
        var complete: Bool
    }

    func run<T: Sendable>(
        _ body: (_ base: String, _ outcomes: AsyncStream<Outcome>) async throws -> T
    ) async throws
        -> T
    {
        let (outcomes, report) = AsyncStream.makeStream(of: Outcome.self)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let port = try #require(server.channel.localAddress?.port)
        let script = self.script
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await server.executeThenClose { inbound in
                    var index = 0
                    try await withThrowingDiscardingTaskGroup { connections in
                        for try await connection in inbound {
                            let answer = script(index)
                            index += 1
                            connections.addTask {
                                if let outcome = try? await Self.serve(connection, answer) { report.yield(outcome) }
                            }
                        }
                    }
                }
            }
            defer {
                report.finish()
                server.channel.close(promise: nil)
                group.cancelAll()
            }
            return try await body("http://127.0.0.1:\(port)", outcomes)
        }
    }

    private static func serve(
        _ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, _ answer: (head: [UInt8], piece: [UInt8], pieces: Int)
    ) async throws -> Outcome {
        try await connection.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            var request: [UInt8] = []
            while !String(decoding: request, as: UTF8.self).contains("\r\n\r\n"), request.count < 1 << 20,
                var chunk = try await iterator.next()
            {
                request += chunk.readBytes(length: chunk.readableBytes) ?? []
            }
            let requestHead = String(decoding: request, as: UTF8.self)
            // Awaited until the socket took each write, as in HarpHTTPTests' ScriptedServer: the async writer's `write`
            // returns once a write is queued, and writes queued after the client hung up could be dropped without an error.
            _ = outbound
            let channel = connection.channel
            do {
                try await channel.writeAndFlush(ByteBuffer(bytes: answer.head)).get()
                for _ in 0..<answer.pieces { try await channel.writeAndFlush(ByteBuffer(bytes: answer.piece)).get() }
            } catch {
                return Outcome(requestHead: requestHead, complete: false)
            }
            return Outcome(requestHead: requestHead, complete: true)
        }
    }
}

/// The next outcome, or a failure if none comes within `seconds`.
func firstOutcome(
    of stream: AsyncStream<ScriptedLog.Outcome>, within seconds: Int
) async throws
    -> ScriptedLog.Outcome
{
    try await withThrowingTaskGroup(of: ScriptedLog.Outcome?.self) { group in
        group.addTask { await stream.first { _ in true } }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let outcome = try await group.next() ?? nil else {
            throw LogHTTPError("no report from the scripted log server within \(seconds) s")
        }
        return outcome
    }
}
