import NIOCore
import NIOHTTP1
import NIOSSL

/// Counts the bytes read before the response head is decoded and fails the exchange once they pass the bound: the
/// decoder buffers an incomplete head, so without this a server could grow that buffer with an endless status line.
/// Sits in front of the HTTP decoder (after TLS); passes everything through.
final class HeadGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let limit: Int
    private var received = 0
    private var headSeen = false

    init(limit: Int) { self.limit = limit }

    /// The collector saw the head: from now on the body bound applies.
    func headReceived() { headSeen = true }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !headSeen else {
            context.fireChannelRead(data)
            return
        }
        received += unwrapInboundIn(data).readableBytes
        // The decoder runs within this call: a read that completes the head (and starts the body) marks it seen.
        context.fireChannelRead(data)
        if !headSeen, received > limit {
            context.fireErrorCaught(BoundedHTTPError.headTooLarge(limit: limit))
        }
    }
}

/// Writes the request once connected, collects the answer within the limits and completes `promise` exactly once;
/// every way out (the answer, a bound passed, an error, the deadline, the connection gone) closes the channel.
final class ResponseCollector: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    private let request: HTTPRequestHead
    private let requestBody: [UInt8]?
    private let limits: BoundedHTTPClient.Limits
    private let deadline: NIODeadline
    private let headGuard: HeadGuard
    private let promise: EventLoopPromise<BoundedHTTPClient.Response>

    private var head: HTTPResponseHead?
    private var body: [UInt8] = []
    private var finished = false
    private var deadlineTask: Scheduled<Void>?

    init(
        request: HTTPRequestHead, body: [UInt8]?, limits: BoundedHTTPClient.Limits, deadline: NIODeadline,
        headGuard: HeadGuard, promise: EventLoopPromise<BoundedHTTPClient.Response>
    ) {
        self.request = request
        self.requestBody = body
        self.limits = limits
        self.deadline = deadline
        self.headGuard = headGuard
        self.promise = promise
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let limit = limits.deadline
        deadlineTask = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            finish(context: context, .failure(BoundedHTTPError.timedOut(limit)))
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish(context: context, .failure(BoundedHTTPError.closedEarly))
    }

    func channelActive(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(request)), promise: nil)
        if let requestBody, !requestBody.isEmpty {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: requestBody)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else { return }
        switch unwrapInboundIn(data) {
        case .head(let received):
            headGuard.headReceived()
            // A body announced over the bound is refused before any of it is read.
            if let announced = received.headers.first(name: "content-length").flatMap({ Int($0) }),
                announced > limits.maximumBody
            {
                finish(context: context, .failure(BoundedHTTPError.bodyTooLarge(limit: limits.maximumBody)))
                return
            }
            head = received
        case .body(let part):
            guard body.count + part.readableBytes <= limits.maximumBody else {
                finish(context: context, .failure(BoundedHTTPError.bodyTooLarge(limit: limits.maximumBody)))
                return
            }
            body.append(contentsOf: part.readableBytesView)
        case .end:
            guard let head else {
                finish(context: context, .failure(BoundedHTTPError.malformed("an answer without a head")))
                return
            }
            let response = BoundedHTTPClient.Response(
                status: Int(head.status.code), headers: head.headers.map { ($0.name, $0.value) }, body: body)
            finish(context: context, .success(response))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let reason: any Error =
            switch error {
            case let bounded as BoundedHTTPError: bounded
            case HTTPParserError.headerOverflow: BoundedHTTPError.headTooLarge(limit: limits.maximumHead)
            case let parser as HTTPParserError: BoundedHTTPError.malformed("\(parser)")
            case let tls as NIOSSLError: BoundedHTTPError.unreachable("TLS: \(tls)")
            case let tls as BoringSSLError: BoundedHTTPError.unreachable("TLS: \(tls)")
            case let tls as NIOSSLExtraError: BoundedHTTPError.unreachable("TLS: \(tls)")
            default: BoundedHTTPError.unreachable("\(error)")
            }
        finish(context: context, .failure(reason))
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(context: context, .failure(BoundedHTTPError.closedEarly))
        context.fireChannelInactive()
    }

    private func finish(context: ChannelHandlerContext, _ result: Result<BoundedHTTPClient.Response, any Error>) {
        guard !finished else { return }
        finished = true
        deadlineTask?.cancel()
        deadlineTask = nil
        body = []
        promise.completeWith(result)
        context.close(promise: nil)
    }
}
