import NIOCore
import NIOPosix
import Testing

/// An HTTP server on 127.0.0.1, port 0, that follows a script whatever the request: it reads the request (head, and a
/// Content-Length body), writes `head`, then `piece` `pieces` times as fast as the client takes the bytes, then closes
/// (or, with `stall`, waits for the client to hang up). Each connection reports how much it wrote and whether it
/// wrote everything, so a test can tell a client that hung up from one that read it all.
struct ScriptedServer: Sendable {
    var head: [UInt8]
    var piece: [UInt8] = []
    var pieces = 0
    var stall = false

    /// What one connection did.
    struct Outcome: Sendable {
        /// The request as read (head and body).
        var request: [UInt8]
        /// Bytes written after the head before the connection failed, or all of them.
        var written: Int
        /// Whether the head and every piece were written.
        var complete: Bool
        var requestText: String { String(decoding: request, as: UTF8.self) }
    }

    /// The bytes the script writes after its head.
    var total: Int { piece.count * pieces }

    /// An answer of `status` with these header lines (each without CRLF) and no more.
    static func head(_ status: String, _ lines: [String]) -> [UInt8] {
        Array(("HTTP/1.1 \(status)\r\n" + lines.map { $0 + "\r\n" }.joined() + "\r\n").utf8)
    }

    /// Runs the server for the duration of `body`, which gets the base URL and the connections' outcomes.
    @discardableResult
    func run<T: Sendable>(
        _ body: (_ base: String, _ outcomes: AsyncStream<Outcome>) async throws -> T
    ) async throws -> T {
        let (outcomes, report) = AsyncStream.makeStream(of: Outcome.self)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
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
                                let outcome = try? await script.serve(connection)
                                if let outcome { report.yield(outcome) }
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

    private func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async throws -> Outcome {
        try await connection.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            var request: [UInt8] = []
            while !Self.complete(request), request.count < 1 << 20, var chunk = try await iterator.next() {
                request += chunk.readBytes(length: chunk.readableBytes) ?? []
            }
            // Each write is awaited until the socket took it (`writeAndFlush`'s future), not only until it was queued
            // (the async writer's `write`): after the client had hung up, queued writes could be dropped without an error
            // while the close was still on its way to the writer, and under load a whole script of them counted as
            // written.
            _ = outbound
            let channel = connection.channel
            var written = 0
            do {
                try await channel.writeAndFlush(ByteBuffer(bytes: head)).get()
                for _ in 0..<pieces {
                    try await channel.writeAndFlush(ByteBuffer(bytes: piece)).get()
                    written += piece.count
                }
            } catch {
                return Outcome(request: request, written: written, complete: false)
            }
            // A stalled answer: nothing more until the client hangs up.
            if stall {
                do {
                    while try await iterator.next() != nil {}
                } catch {}
            }
            return Outcome(request: request, written: written, complete: true)
        }
    }

    /// Whether `bytes` hold a whole request: a head, and as many body bytes as its Content-Length says.
    static func complete(_ bytes: [UInt8]) -> Bool {
        let marker: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 4,
            let end = (0...(bytes.count - 4)).first(where: { Array(bytes[$0..<$0 + 4]) == marker })
        else { return false }
        let head = String(decoding: bytes[..<end], as: UTF8.self).lowercased()
        let length =
            head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
            .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
        return bytes.count - end - 4 >= length
    }
}

/// The first element of `stream`, or a failure naming `what` if none comes within `seconds`.
func first<T: Sendable>(of stream: AsyncStream<T>, within seconds: Int, _ what: String) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            var iterator = stream.makeAsyncIterator()
            return await iterator.next()
        }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let value = try await group.next() ?? nil else {
            throw TestDeadline(description: "\(what) within \(seconds) s")
        }
        return value
    }
}

struct TestDeadline: Error, CustomStringConvertible {
    let description: String
}
