import NIOCore
internal import NIOHTTP1
internal import NIOPosix
public import NIOSSL

/// One HTTP/1.1 request whose answer is hostile input: the body is kept up to `Limits.maximumBody` bytes, the head
/// (status line and headers) up to `Limits.maximumHead`, and the whole exchange, connecting included, ends by
/// `Limits.deadline`. The connection is closed the moment a bound is passed, so a server that announces or sends
/// more gets an error after at most the bound (plus one socket read) has been read, never after it sent it all.
///
/// Content-Length, chunked and close-delimited bodies are decoded by NIOHTTP1; a Content-Length above the body bound
/// is refused at the head, before any body byte is read. Every request carries `Connection: close`: one connection
/// per request, nothing pooled. `https` URLs use `tlsConfiguration`: by default the system's trust roots with the
/// host name verified (the name for SNI; an IP address is matched against the certificate's IP addresses).
public struct BoundedHTTPClient: Sendable {
    /// The bounds of one exchange.
    public struct Limits: Sendable {
        /// The largest body kept, in bytes.
        public var maximumBody: Int
        /// The largest status line and headers (and trailers) read, in bytes.
        public var maximumHead: Int
        /// The time the whole exchange may take, from before connecting to the last byte of the body.
        public var deadline: Duration

        public init(maximumBody: Int, maximumHead: Int = 16 << 10, deadline: Duration) {
            self.maximumBody = max(0, maximumBody)
            self.maximumHead = max(1024, maximumHead)
            self.deadline = deadline
        }
    }

    /// A complete answer.
    public struct Response: Sendable {
        public var status: Int
        /// Header names and values in the order received.
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]

        /// The first value of the header `name` (compared without regard to case).
        public func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
    }

    public let limits: Limits
    public let tlsConfiguration: TLSConfiguration

    public init(limits: Limits, tlsConfiguration: TLSConfiguration = .makeClientConfiguration()) {
        self.limits = limits
        self.tlsConfiguration = tlsConfiguration
    }

    /// Sends `method url` with `headers` and `body` (a body, or any POST or PUT, gets a Content-Length) and returns
    /// the complete answer, whatever its status. Throws `BoundedHTTPError`.
    public func send(
        _ method: String, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil
    ) async throws -> Response {
        let target = try Target(url)
        let deadline = NIODeadline.now() + TimeAmount(limits.deadline)
        let sslContext: NIOSSLContext?
        do {
            sslContext = target.secure ? try NIOSSLContext(configuration: tlsConfiguration) : nil
        } catch {
            throw BoundedHTTPError.unreachable("TLS configuration: \(error)")
        }
        let request = Self.head(method, target: target, headers: headers, bodyCount: body?.count)
        let limits = self.limits
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.any().makePromise(of: Response.self)
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(max(.milliseconds(1), deadline - .now()))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let sslContext {
                        try pipeline.addHandler(
                            NIOSSLClientHandler(context: sslContext, serverHostname: target.sniName))
                    }
                    let headGuard = HeadGuard(limit: limits.maximumHead)
                    try pipeline.addHandler(headGuard)
                    var decoderLimits = NIOHTTPDecoderLimitConfiguration()
                    decoderLimits.maxHeaderFieldSize = limits.maximumHead
                    decoderLimits.maxHeaderListSize = limits.maximumHead
                    decoderLimits.maxHeaderFieldCount = 256
                    try pipeline.addHTTPClientHandlers(decoderLimitConfiguration: decoderLimits)
                    try pipeline.addHandler(
                        ResponseCollector(
                            request: request, body: body, limits: limits, deadline: deadline, headGuard: headGuard,
                            promise: promise))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: target.host, port: target.port).get()
        } catch {
            let reason: BoundedHTTPError =
                NIODeadline.now() >= deadline
                ? .timedOut(limits.deadline) : .unreachable("\(target.host):\(target.port): \(error)")
            promise.fail(reason)
            throw reason
        }
        return try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            promise.fail(CancellationError())
            channel.close(promise: nil)
        }
    }

    static func head(
        _ method: String, target: Target, headers: [(String, String)], bodyCount: Int?
    )
        -> HTTPRequestHead
    {
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: target.pathAndQuery)
        head.headers.add(name: "Host", value: target.hostHeader)
        head.headers.add(name: "User-Agent", value: "harp")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if bodyCount != nil || method == "POST" || method == "PUT" {
            head.headers.replaceOrAdd(name: "Content-Length", value: "\(bodyCount ?? 0)")
        }
        head.headers.replaceOrAdd(name: "Connection", value: "close")
        return head
    }
}

/// Why a bounded exchange gave no answer.
public enum BoundedHTTPError: Error, Equatable, CustomStringConvertible {
    /// Not an `http` or `https` URL with a host.
    case badURL(String)
    /// The connection or the TLS handshake failed.
    case unreachable(String)
    /// The whole exchange took longer than its deadline.
    case timedOut(Duration)
    /// The status line and headers were longer than the bound.
    case headTooLarge(limit: Int)
    /// The body was (or was announced as) longer than the bound.
    case bodyTooLarge(limit: Int)
    /// The answer is not HTTP/1.1.
    case malformed(String)
    /// The server closed the connection before the answer was complete.
    case closedEarly

    public var description: String {
        switch self {
        case .badURL(let url): "not an http(s) URL: \(url)"
        case .unreachable(let detail): "cannot connect: \(detail)"
        case .timedOut(let deadline): "no complete answer within \(deadline)"
        case .headTooLarge(let limit): "answer headers over \(limit) bytes"
        case .bodyTooLarge(let limit): "answer over \(limit) bytes"
        case .malformed(let detail): "malformed HTTP answer: \(detail)"
        case .closedEarly: "the server closed the connection before the answer was complete"
        }
    }
}
