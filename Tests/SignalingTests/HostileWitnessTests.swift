import Crypto
import Foundation
import NIOCore
import NIOPosix
import Testing
import VersionLog

@testable import SignalingServer

/// A witness of the federation that answers `add-checkpoint` with far more than a witness may: the publisher must
/// close its connection at the bound (the witness cannot write it all) and publish nothing without its quorum.
@Suite("Hostile witness")
struct HostileWitnessTests {
    enum Answer: String, CaseIterable, Sendable {
        case contentLengthOneGiB
        case endlessChunked
    }

    @Test(arguments: Answer.allCases)
    func aWitnessAnsweringWithoutEndIsCutOffAndNotCounted(_ answer: Answer) async throws {
        let piece = [UInt8](repeating: 0x61, count: 64 << 10)
        let head: String
        let written: [UInt8]
        switch answer {
        case .contentLengthOneGiB:
            head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(1 << 30)\r\n\r\n"
            written = piece
        case .endlessChunked:
            head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
            written = Array("10000\r\n".utf8) + piece + Array("\r\n".utf8)
        }
        // 64 MiB: far more than the kernel buffers between two loopback sockets.
        let witness = HostileWitness(head: Array(head.utf8), piece: written, pieces: 1024)
        let (configuration, _) = try LogHTTPTests.configuration(name: "a.test")
        try await witness.run { port, outcomes in
            var log = configuration
            log.federation = Federation(servers: [
                .init(
                    url: "http://127.0.0.1:\(port)",
                    logKey: try NoteSigningKey.generate(name: "w.test", type: .ed25519).verifierKey,
                    witnessKey: try NoteSigningKey.generate(name: "w.test/witness", type: .cosignatureV1).verifierKey)
            ])
            log.witnessQuorum = 1
            // Only the explicit rounds below ask the witness.
            log.publishInterval = .seconds(3600)
            let logConfiguration = log
            try await withServer(logConfiguration) { server, _, _ in
                try await LogHTTPTests.enroll(server, Curve25519.Signing.PrivateKey())
                let published = try await server.publisher.publishOnce()
                #expect(published == nil)
                #expect(try await server.log.latestPublished() == nil)
            }
            let outcome = try await first(of: outcomes, within: 60, "the hostile witness's report")
            #expect(outcome.requestHead.hasPrefix("POST /add-checkpoint HTTP/1.1"))
            #expect(!outcome.complete, "the witness wrote all 64 MiB: the publisher read on past its bound")
        }
    }
}

/// An HTTP server on 127.0.0.1, port 0, that answers every request with `head` and then `piece` `pieces` times, and
/// reports per connection whether it could write it all (it cannot once the client has closed the connection).
struct HostileWitness: Sendable {
    var head: [UInt8]
    var piece: [UInt8]
    var pieces: Int

    struct Outcome: Sendable {
        var requestHead: String
        var complete: Bool
    }

    func run<T: Sendable>(_ body: (_ port: Int, _ outcomes: AsyncStream<Outcome>) async throws -> T) async throws -> T {
        let (outcomes, report) = AsyncStream.makeStream(of: Outcome.self)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let port = try #require(server.channel.localAddress?.port)
        let script = self
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await server.executeThenClose { inbound in
                    try await withThrowingDiscardingTaskGroup { connections in
                        for try await connection in inbound {
                            connections.addTask {
                                if let outcome = try? await script.serve(connection) { report.yield(outcome) }
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
            return try await body(port, outcomes)
        }
    }

    private func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async throws -> Outcome {
        try await connection.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            var request: [UInt8] = []
            // The head is enough: the answer does not depend on the request.
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
                try await channel.writeAndFlush(ByteBuffer(bytes: head)).get()
                for _ in 0..<pieces { try await channel.writeAndFlush(ByteBuffer(bytes: piece)).get() }
            } catch {
                return Outcome(requestHead: requestHead, complete: false)
            }
            return Outcome(requestHead: requestHead, complete: true)
        }
    }
}

/// The first element of `stream`, or a failure naming `what` if none comes within `seconds`.
func first<T: Sendable>(of stream: AsyncStream<T>, within seconds: Double, _ what: String) async throws -> T {
    guard let value = try await withTimeout(what, seconds: seconds, { await stream.first { _ in true } }) else {
        throw TimedOut(what: what)
    }
    return value
}
