import NIOCore
import NIOPosix
import Synchronization

/// A plain TCP connection to the server on loopback from a chosen source address (127.0.0.0/8 is all loopback, so
/// 127.0.0.2 and 127.0.0.3 are other "clients"): it can stay silent, send a few bytes, and report what came back and
/// when the server closed it.
final class TCPProbe: Sendable {
    private let channel: any Channel
    private let received: Received

    /// The bytes the server sent so far.
    private final class Received: Sendable {
        let bytes = Mutex<[UInt8]>([])
    }

    private init(channel: any Channel, received: Received) {
        self.channel = channel
        self.received = received
    }

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let sink: @Sendable ([UInt8]) -> Void
        init(sink: @escaping @Sendable ([UInt8]) -> Void) { self.sink = sink }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            sink(buffer.readBytes(length: buffer.readableBytes) ?? [])
        }
    }

    /// Writes `first` as soon as the connection is up, on the event loop: a test whose server closes idle
    /// connections after a short timeout cannot lose that race to a slow scheduler between connect and send.
    private final class FirstWrite: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let text: String
        init(text: String) { self.text = text }
        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(NIOAny(ByteBuffer(string: text)), promise: nil)
            context.fireChannelActive()
        }
    }

    static func connect(port: Int, from source: String, sending first: String? = nil) async throws -> TCPProbe {
        let received = Received()
        let collector = Collector { bytes in received.bytes.withLock { $0 += bytes } }
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let first { try channel.pipeline.syncOperations.addHandler(FirstWrite(text: first)) }
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .bind(to: try SocketAddress(ipAddress: source, port: 0))
            .connect(host: "127.0.0.1", port: port)
            .get()
        return TCPProbe(channel: channel, received: received)
    }

    func send(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text))
    }

    /// Waits until the server closes the connection (fails after `seconds`), then returns everything it sent.
    func waitForClose(_ what: String, seconds: Double = 15) async throws -> String {
        let channel = self.channel
        // A future's `get()` ignores cancellation: closing the channel when the timeout cancels the wait ends it.
        try await withTimeout(what, seconds: seconds) {
            try await withTaskCancellationHandler {
                try await channel.closeFuture.get()
                try Task.checkCancellation()
            } onCancel: {
                channel.close(promise: nil)
            }
        }
        return String(decoding: received.bytes.withLock { $0 }, as: UTF8.self)
    }

    func close() async {
        try? await channel.close()
    }

    /// `GET path` with `Connection: close`; the server's whole answer ("" when it closed without one).
    static func get(_ path: String, port: Int, from source: String) async throws -> String {
        let probe = try await connect(port: port, from: source)
        // A refused connection may be closed before the request is written: that is an empty answer.
        try? await probe.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        return try await probe.waitForClose("answer to GET \(path) from \(source)")
    }
}
