import HTTPTypes
import NIOCore
import NIOPosix
import Synchronization

@testable import NextcloudClient

/// A tiny HTTP/1.1 server on 127.0.0.1, port 0, for transport tests: it parses requests with
/// Content-Length bodies, keeps connections alive, and answers with whatever `handler` says,
/// including misbehaviour (close-delimited bodies, stalls, dropped connections).
final class TestHTTPServer: Sendable {
    struct Request: Sendable {
        let method: String
        let target: String
        let headers: HTTPFields
        let body: [UInt8]

        /// The user and password of a Basic Authorization header.
        var basicAuth: (user: String, password: String)? {
            guard let value = headers[.authorization], value.hasPrefix("Basic "),
                let decoded = decodeBase64(String(value.dropFirst(6))),
                let colon = decoded.firstIndex(of: ":")
            else { return nil }
            return (String(decoded[..<colon]), String(decoded[decoded.index(after: colon)...]))
        }
    }

    enum Reply: Sendable {
        /// A normal answer with Content-Length.
        case respond(Int, headers: [(String, String)] = [], body: [UInt8] = [])
        /// No Content-Length: the body ends when the server closes the connection.
        case closeDelimited(Int, headers: [(String, String)] = [], body: [UInt8] = [])
        /// Headers announcing `announcedLength` bytes, then only `first`, then nothing.
        case stall(Int, headers: [(String, String)] = [], announcedLength: Int, first: [UInt8])
        /// Close the connection without answering.
        case drop
    }

    typealias Handler = @Sendable (Request) -> Reply

    private let handler: Handler
    private let state = Mutex(State())
    private let channel = Mutex<(any Channel)?>(nil)

    private struct State {
        var connections = 0
        var requests: [Request] = []
    }

    init(handler: @escaping Handler) {
        self.handler = handler
    }

    /// Binds 127.0.0.1 on a free port and returns the base URL text.
    func start() async throws -> String {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RawHTTPHandler(server: self))
                }
            }
        let bound = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
        channel.withLock { $0 = bound }
        guard let port = bound.localAddress?.port else { throw FixtureError.malformed("no port") }
        return "http://127.0.0.1:\(port)"
    }

    func stop() async {
        let bound = channel.withLock { $0 }
        try? await bound?.close()
    }

    var connectionCount: Int { state.withLock { $0.connections } }
    var requests: [Request] { state.withLock { $0.requests } }

    fileprivate func connectionOpened() {
        state.withLock { $0.connections += 1 }
    }

    fileprivate func handle(_ request: Request) -> Reply {
        state.withLock { $0.requests.append(request) }
        return handler(request)
    }
}

private final class RawHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let server: TestHTTPServer
    private var buffer: [UInt8] = []
    private var stalled = false

    init(server: TestHTTPServer) {
        self.server = server
    }

    func channelActive(context: ChannelHandlerContext) {
        server.connectionOpened()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        buffer += bytes.readBytes(length: bytes.readableBytes) ?? []
        // A TLS ClientHello (record type 0x16) to this plain-HTTP server: hang up, as a
        // misconfigured server would.
        if buffer.first == 0x16 {
            context.close(promise: nil)
            return
        }
        while !stalled, let request = nextRequest() {
            reply(server.handle(request), context: context)
        }
    }

    private func nextRequest() -> TestHTTPServer.Request? {
        let marker: [UInt8] = [13, 10, 13, 10]
        guard let end = buffer.indices.dropLast(3).first(where: { Array(buffer[$0..<$0 + 4]) == marker }) else {
            return nil
        }
        let headText = String(decoding: buffer[..<end], as: UTF8.self)
        var lines = headText.split(separator: "\r\n")[...]
        let requestLine = lines.popFirst()?.split(separator: " ") ?? []
        var headers = HTTPFields()
        for line in lines { headers.addRawLine(line) }
        let length = headers[.contentLength].flatMap { Int($0) } ?? 0
        let bodyStart = end + 4
        guard buffer.count >= bodyStart + length, requestLine.count >= 2 else { return nil }
        let body = Array(buffer[bodyStart..<bodyStart + length])
        buffer.removeFirst(bodyStart + length)
        return TestHTTPServer.Request(
            method: String(requestLine[0]), target: String(requestLine[1]), headers: headers, body: body)
    }

    private func reply(_ reply: TestHTTPServer.Reply, context: ChannelHandlerContext) {
        switch reply {
        case .respond(let status, let headers, let body):
            write(
                status: status, headers: headers + [("Content-Length", "\(body.count)")], body: body, context: context)
        case .closeDelimited(let status, let headers, let body):
            write(status: status, headers: headers + [("Connection", "close")], body: body, context: context)
            context.close(promise: nil)
            stalled = true
        case .stall(let status, let headers, let announced, let first):
            write(
                status: status, headers: headers + [("Content-Length", "\(announced)")], body: first, context: context)
            stalled = true
        case .drop:
            context.close(promise: nil)
            stalled = true
        }
    }

    private func write(status: Int, headers: [(String, String)], body: [UInt8], context: ChannelHandlerContext) {
        var head = "HTTP/1.1 \(status) Status\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        var out = context.channel.allocator.buffer(capacity: head.utf8.count + body.count)
        out.writeString(head)
        out.writeBytes(body)
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    }
}

/// Standard base64 decoding (test helper; the client never decodes base64).
func decodeBase64(_ text: String) -> String? {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var bits = 0
    var value = 0
    var out: [UInt8] = []
    for byte in text.utf8 where byte != UInt8(ascii: "=") {
        guard let index = alphabet.firstIndex(of: byte) else { return nil }
        value = (value << 6) | index
        bits += 6
        if bits >= 8 {
            bits -= 8
            out.append(UInt8((value >> bits) & 0xff))
        }
    }
    return String(decoding: out, as: UTF8.self)
}
