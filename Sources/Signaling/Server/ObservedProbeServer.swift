import Foundation
import Logging
import NIOCore
import NIOPosix
import SignalingProtocol
import Synchronization

/// The second observation point (docs/nat.md, "Which NAT is symmetric"): a plain HTTP listener on another port of the
/// server that answers `GET /v1/observed` like the main port does, and nothing else. A client asks both from its peer
/// listening port: an endpoint-independent NAT maps that port to one number for both destinations, a symmetric NAT to
/// two. Each connection may send at most `maxRequestBytes` within `timeout`, gets one answer and is closed; at most
/// `maxOpen` connections at once (more are closed at accept), each address within the main port's rate and budget
/// (twice a second, a burst of 20, by default).
final class ObservedProbeServer: Sendable {
    static let maxRequestBytes = 2048
    static let maxOpen = 512
    static let timeout = TimeAmount.seconds(3)

    private let channel: any Channel

    var port: Int { channel.localAddress?.port ?? 0 }

    private init(channel: any Channel) { self.channel = channel }

    static func bind(
        host: String, port: Int, rateLimit: AddressRateLimit, maxOpen: Int = maxOpen, timeout: TimeAmount = timeout,
        logger: Logger
    ) async throws -> ObservedProbeServer {
        let open = Atomic<Int>(0)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard open.add(1, ordering: .relaxed).newValue <= maxOpen else {
                        open.subtract(1, ordering: .relaxed)
                        channel.close(promise: nil)
                        return
                    }
                    channel.closeFuture.whenComplete { _ in open.subtract(1, ordering: .relaxed) }
                    let deadline = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
                    channel.closeFuture.whenComplete { _ in deadline.cancel() }
                    try channel.pipeline.syncOperations.addHandler(Answerer(rateLimit: rateLimit))
                }
            }
            .bind(host: host, port: port).get()
        logger.info("observation port listening", metadata: ["port": "\(channel.localAddress?.port ?? 0)"])
        return ObservedProbeServer(channel: channel)
    }

    func close() async {
        try? await channel.close()
    }

    /// Reads the request head, answers with where the connection came from, closes.
    private final class Answerer: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        private let rateLimit: AddressRateLimit
        private var head: [UInt8] = []
        private var answered = false

        init(rateLimit: AddressRateLimit) { self.rateLimit = rateLimit }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !answered else { return }
            var buffer = unwrapInboundIn(data)
            // Only the new bytes (and the three before them) are searched: a request sent a byte at a time costs
            // linear time, not quadratic.
            let from = max(0, head.count - 3)
            head += buffer.readBytes(length: min(buffer.readableBytes, maxRequestBytes + 1 - head.count)) ?? []
            guard let end = head.indices[from...].first(where: { head[$0...].starts(with: [13, 10, 13, 10]) }) else {
                if head.count > maxRequestBytes { context.close(promise: nil) }
                return
            }
            answered = true
            let requestLine = String(decoding: head[..<end].prefix { $0 != 13 }, as: UTF8.self)
            let remote = context.channel.remoteAddress
            let status: String
            var body = ""
            if requestLine.split(separator: " ").prefix(2) != ["GET", Substring(Signaling.observedPath)] {
                status = "404 Not Found"
            } else if !rateLimit.allow(ClientAddress.key(of: remote)) {
                status = "429 Too Many Requests"
            } else if let observed = ClientAddress.observed(remote, port: true),
                let json = try? JSONEncoder().encode(ObservedReply(observed))
            {
                status = "200 OK"
                body = String(decoding: json, as: UTF8.self)
            } else {
                status = "404 Not Found"
            }
            let response =
                "HTTP/1.1 \(status)\r\ncontent-type: application/json\r\ncontent-length: \(body.utf8.count)\r\n"
                + "cache-control: no-store\r\nconnection: close\r\n\r\n\(body)"
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response))).whenComplete { _ in
                channel.close(promise: nil)
            }
        }
    }
}
