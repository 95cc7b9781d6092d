import Foundation
import NIOCore
import NIOPosix

/// An HTTP server on 127.0.0.1, port 0, that follows a script whatever the request, shared by the tests of every
/// client that must bound what a server sends (HarpHTTP, the log client, the federation's witness publisher): it reads
/// the request (head, and a Content-Length body), writes the script's `head`, then its `piece` `pieces` times as fast
/// as the client takes the bytes, then closes (or, with `stall`, waits for the client to hang up). Connection N (from
/// 0) follows `script(N)`. Each connection reports how much it wrote and whether it wrote everything, so a test can
/// tell a client that hung up from one that read it all.
public struct ScriptedServer: Sendable {
    /// What one connection is answered.
    public struct Script: Sendable {
        public var head: [UInt8]
        public var piece: [UInt8] = []
        public var pieces = 0
        public var stall = false

        public init(head: [UInt8], piece: [UInt8] = [], pieces: Int = 0, stall: Bool = false) {
            self.head = head
            self.piece = piece
            self.pieces = pieces
            self.stall = stall
        }

        /// The bytes the script writes after its head.
        public var total: Int { piece.count * pieces }
    }

    /// What one connection did.
    public struct Outcome: Sendable {
        /// The request as read (head and body).
        public var request: [UInt8]
        /// Bytes written after the head before the connection failed, or all of them.
        public var written: Int
        /// Whether the head and every piece were written.
        public var complete: Bool
        public var requestText: String { String(decoding: request, as: UTF8.self) }
    }

    let script: @Sendable (Int) -> Script

    /// Every connection answered alike.
    public init(head: [UInt8], piece: [UInt8] = [], pieces: Int = 0, stall: Bool = false) {
        let script = Script(head: head, piece: piece, pieces: pieces, stall: stall)
        self.script = { _ in script }
    }

    /// Connection N answered with `script(N)`.
    public init(script: @escaping @Sendable (Int) -> Script) {
        self.script = script
    }

    /// The bytes the first connection's script writes after its head.
    public var total: Int { script(0).total }

    /// An answer of `status` with these header lines (each without CRLF) and no more.
    public static func head(_ status: String, _ lines: [String]) -> [UInt8] {
        Array(("HTTP/1.1 \(status)\r\n" + lines.map { $0 + "\r\n" }.joined() + "\r\n").utf8)
    }

    /// Runs the server for the duration of `body`, which gets the base URL and the connections' outcomes.
    @discardableResult
    public func run<T: Sendable>(
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
        guard let port = server.channel.localAddress?.port else { throw TestDeadline(description: "no port bound") }
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
        _ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, _ script: Script
    ) async throws -> Outcome {
        try await connection.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            var request: [UInt8] = []
            while !Self.complete(request), request.count < 1 << 20, var chunk = try await iterator.next() {
                request += chunk.readBytes(length: chunk.readableBytes) ?? []
            }
            // Each write is awaited until the socket took it (`writeAndFlush`'s future), not only until it was queued
            // (the async writer's `write`): after the client had hung up, queued writes could be dropped without an
            // error while the close was still on its way to the writer, and once, under load, a whole script of them
            // counted as written.
            _ = outbound
            let channel = connection.channel
            var written = 0
            do {
                try await channel.writeAndFlush(ByteBuffer(bytes: script.head)).get()
                for _ in 0..<script.pieces {
                    try await channel.writeAndFlush(ByteBuffer(bytes: script.piece)).get()
                    written += script.piece.count
                }
            } catch {
                return Outcome(request: request, written: written, complete: false)
            }
            // A stalled answer: nothing more until the client hangs up.
            if script.stall {
                do {
                    while try await iterator.next() != nil {}
                } catch {}
            }
            return Outcome(request: request, written: written, complete: true)
        }
    }

    /// Whether `bytes` hold a whole request: a head, and as many body bytes as its Content-Length says.
    public static func complete(_ bytes: [UInt8]) -> Bool {
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
public func firstReport<T: Sendable>(
    of stream: AsyncStream<T>, within seconds: Int, _ what: String
) async throws -> T {
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

public struct TestDeadline: Error, CustomStringConvertible {
    public let description: String
}
