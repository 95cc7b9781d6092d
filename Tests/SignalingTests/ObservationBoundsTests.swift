import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import SignalingClient
@testable import SignalingProtocol
@testable import SignalingServer

/// The bounds of the two ends of `GET /v1/observed` (docs/nat.md, "The listening port's mapping"), against a hostile
/// other end: a server that answers too much or nothing, clients that hold connections open or send nothing.
@Suite("Observation bounds")
struct ObservationBoundsTests {
    /// A TCP server on 127.0.0.1 that writes `reply` to each connection and then keeps it open.
    static func hostileServer(reply: [UInt8]) async throws -> any Channel {
        final class Writer: ChannelInboundHandler, Sendable {
            typealias InboundIn = ByteBuffer
            let reply: [UInt8]
            init(_ reply: [UInt8]) { self.reply = reply }
            func channelActive(context: ChannelHandlerContext) {
                if !reply.isEmpty { context.writeAndFlush(NIOAny(ByteBuffer(bytes: reply)), promise: nil) }
            }
        }
        return try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Writer(reply)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    @Test("a probe reads at most 4 KiB of an answer and waits at most its timeout")
    func theProbeIsBounded() async throws {
        let flood = try await Self.hostileServer(
            reply: Array(repeating: UInt8(ascii: "a"), count: ReflexiveProbe.maxResponseBytes + 1))
        defer { flood.close(promise: nil) }
        let floodURL = "ws://127.0.0.1:\(try #require(flood.localAddress?.port))/v1/ws"
        await #expect(throws: ReflexiveProbe.Failure.tooLarge) {
            _ = try await ReflexiveProbe.observe(url: floodURL, localPort: 0, tls: nil, timeout: .seconds(10))
        }
        let silent = try await Self.hostileServer(reply: [])
        defer { silent.close(promise: nil) }
        let silentURL = "ws://127.0.0.1:\(try #require(silent.localAddress?.port))/v1/ws"
        let started = ContinuousClock.now
        await #expect(throws: ReflexiveProbe.Failure.timeout) {
            _ = try await ReflexiveProbe.observe(url: silentURL, localPort: 0, tls: nil, timeout: .milliseconds(300))
        }
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    static func connect(_ port: Int) async throws -> any Channel {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port)
            .get()
    }

    @Test("the observation port holds at most maxOpen connections; one closed makes room")
    func theObservationPortHoldsAtMostMaxOpen() async throws {
        let server = try await ObservedProbeServer.bind(
            host: "127.0.0.1", port: 0, rateLimit: AddressRateLimit(rate: 100, burst: 100), maxOpen: 2,
            timeout: .seconds(600), logger: Self.quiet)
        let port = server.port
        // Two silent connections are held; the third is closed at accept.
        let held = [try await Self.connect(port), try await Self.connect(port)]
        let third = try await Self.connect(port)
        try await withTimeout("the third connection is closed at once", seconds: 10) {
            try await third.closeFuture.get()
        }
        #expect(held.allSatisfy { $0.isActive })
        try await held[0].close()
        let url = try #require(SignalClient.url(of: "ws://127.0.0.1:1/v1/ws", port: port))
        let observed = try await withTimeout("a probe once there is room", seconds: 10) { () -> ObservedAddress? in
            while true {
                if let observed = try? await ReflexiveProbe.observe(url: url, localPort: 0, tls: nil) {
                    return observed
                }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        #expect(observed?.address == "127.0.0.1")
        try await held[1].close()
        await server.close()
    }

    @Test("the observation port closes a connection that sends no request within its timeout")
    func theObservationPortClosesASilentConnection() async throws {
        let server = try await ObservedProbeServer.bind(
            host: "127.0.0.1", port: 0, rateLimit: AddressRateLimit(rate: 100, burst: 100),
            timeout: .milliseconds(300), logger: Self.quiet)
        let silent = try await Self.connect(server.port)
        try await withTimeout("the silent connection is closed", seconds: 10) { try await silent.closeFuture.get() }
        await server.close()
    }
}
