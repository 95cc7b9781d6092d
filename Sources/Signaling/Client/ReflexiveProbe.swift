import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import SignalingProtocol

/// Asks the signaling server where a connection from the peer listening port comes from (`GET /v1/observed`,
/// docs/nat.md "The listening port's mapping"): the NAT's mapping of that port, which is the port a punch must aim at.
/// The connection is bound to the listening port with `SO_REUSEADDR` and `SO_REUSEPORT`, as a punch is. An
/// endpoint-independent NAT that keeps port numbers maps it to the same number; one that does not maps it to another,
/// and the reflexive candidate must name that one or every punch aims at a port no flow uses.
///
/// Bounded: one request, at most `maxResponseBytes` read, `timeout` in all. The answer is checked like the server's
/// `welcome` (``ObservedAddress/init(address:port:)``).
enum ReflexiveProbe {
    static let maxResponseBytes = 4096

    enum Failure: Error, Equatable {
        case badURL
        case tooLarge
        case status(Int)
        case malformed
        case timeout
    }

    /// The server's observation of a connection to the signaling server at `url` (`ws://` or `wss://`) made from
    /// `localPort`, with `tls` for `wss` (nil: the system's roots, the host name checked). `overIPv6` says which
    /// family the connection takes (the signaling connection's, as the server saw it): a host name may resolve to
    /// both, and the socket is bound before the name is resolved. Nil: IPv6 when the host is an IPv6 address.
    static func observe(
        url: String, localPort: Int, tls: TLSConfiguration?, overIPv6: Bool? = nil, timeout: Duration = .seconds(3)
    ) async throws -> ObservedAddress {
        guard let parsed = URL(string: url), let host = parsed.host, let scheme = parsed.scheme?.lowercased(),
            scheme == "ws" || scheme == "wss"
        else { throw Failure.badURL }
        let secure = scheme == "wss"
        let port = parsed.port ?? (secure ? 443 : 80)
        let context = try secure ? NIOSSLContext(configuration: tls ?? .makeClientConfiguration()) : nil
        let isAddress = host.allSatisfy { $0.isHexDigit || $0 == "." || $0 == ":" }
        let response = OneShot<[UInt8]>()
        let local = try SocketAddress(ipAddress: (overIPv6 ?? host.contains(":")) ? "::" : "0.0.0.0", port: localPort)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.milliseconds(Int64(timeout / .milliseconds(1))))
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(ChannelOptions.socket(SocketOptionLevel(SOL_SOCKET), SO_REUSEPORT), value: 1)
            .bind(to: local)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let context {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : host))
                    }
                    try channel.pipeline.syncOperations.addHandler(Collector(result: response))
                }
            }
            .connect(host: host, port: port).get()
        defer { channel.close(promise: nil) }
        let hostHeader = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let request =
            "GET \(Signaling.observedPath) HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: harp\r\n"
            + "Connection: close\r\n\r\n"
        // A write that fails (the server closed, or answered too much at once) leaves the answer to the collector.
        try? await channel.writeAndFlush(ByteBuffer(string: request)).get()
        guard let bytes = try await response.value(timeout: timeout) else { throw Failure.timeout }
        return try parse(bytes)
    }

    /// The observation in an HTTP/1.1 response read to its end: status 200 and an `ObservedReply` with a port.
    static func parse(_ bytes: [UInt8]) throws -> ObservedAddress {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = bytes.indices.first(where: { bytes[$0...].starts(with: separator) }) else {
            throw Failure.malformed
        }
        guard let head = String(bytes: bytes[..<end], encoding: .utf8) else { throw Failure.malformed }
        let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        let status = lines.first?.split(separator: " ")
        guard let status, status.count >= 2, status[0].hasPrefix("HTTP/1."), let code = Int(status[1]) else {
            throw Failure.malformed
        }
        guard code == 200 else { throw Failure.status(code) }
        var body = Array(bytes[(end + 4)...])
        for line in lines.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let name = parts[0].trimmingCharacters(in: .whitespaces).lowercased()
            let value = parts[1].trimmingCharacters(in: .whitespaces)
            if name == "content-length" {
                guard let length = Int(value), length >= 0, length <= body.count else { throw Failure.malformed }
                body = Array(body.prefix(length))
            } else if name == "transfer-encoding" {
                // One answer of a few dozen bytes: a chunked one is not expected from the server.
                throw Failure.malformed
            }
        }
        guard let reply = try? JSONDecoder().decode(ObservedReply.self, from: Data(body)),
            let observed = ObservedAddress(address: reply.address, port: reply.port), observed.port != nil
        else { throw Failure.malformed }
        return observed
    }

    /// Collects the response until the connection closes, at most `maxResponseBytes`.
    private final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        private let result: OneShot<[UInt8]>
        private var bytes: [UInt8] = []

        init(result: OneShot<[UInt8]>) { self.result = result }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            guard bytes.count + buffer.readableBytes <= ReflexiveProbe.maxResponseBytes else {
                result.fail(Failure.tooLarge)
                context.close(promise: nil)
                return
            }
            bytes += buffer.readBytes(length: buffer.readableBytes) ?? []
        }

        func channelInactive(context: ChannelHandlerContext) {
            result.fulfil(bytes)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // A TLS close without close_notify after the whole response: what was read is the answer.
            if let ssl = error as? NIOSSLError, ssl == .uncleanShutdown { return }
            result.fail(error)
            context.close(promise: nil)
        }
    }
}
