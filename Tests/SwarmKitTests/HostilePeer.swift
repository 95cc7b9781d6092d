import ChunkStore
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import SwarmKit

/// A scripted peer that knows K: it completes the real Noise handshake and `hello` as any member would, then
/// misbehaves (floods, never reads, lies, stalls) through the methods below.
///
/// It reads from its socket only while `next` waits for a message (auto-read is off otherwise), so whatever the
/// attacked side sends piles up in the kernel and then on the attacked side. Used by one test task at a time.
final class HostilePeer {
    let identity: DeviceIdentity
    let channel: any Channel
    private var inbound: AsyncThrowingStream<WireMessage, any Error>.AsyncIterator

    var isClosed: Bool { !channel.isActive }

    static let quiet = Logger(label: "hostile", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Connects to `127.0.0.1:port` with swarm key `swarmKey` (a member's K) and a fresh device key, and returns
    /// once the handshake and the hello exchange are done.
    static func connect(
        port: Int, swarmKey: SecureBytes, identity: DeviceIdentity = .generate(), capabilities: UInt64 = 0
    ) async throws -> HostilePeer {
        var configuration = PeerConfiguration(identity: identity, swarmKey: swarmKey)
        configuration.logger = quiet
        configuration.capabilities = capabilities
        configuration.enforceAnnouncements = false
        configuration.idleTimeout = .seconds(3600)
        let (messages, sink) = AsyncThrowingStream.makeStream(of: WireMessage.self)
        let settings = configuration
        let (channel, ready) = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let ready = try PeerChannel.addHandlers(to: channel, role: .initiator, configuration: settings)
                    try channel.pipeline.syncOperations.addHandler(Collector(sink: sink))
                    try channel.pipeline.syncOperations.addHandler(RawWriter(), position: .first)
                    return (channel, ready)
                }
            }
        _ = try await ready.get()
        try await channel.setOption(.autoRead, value: false).get()
        return HostilePeer(identity: identity, channel: channel, inbound: messages.makeAsyncIterator())
    }

    private init(
        identity: DeviceIdentity, channel: any Channel,
        inbound: AsyncThrowingStream<WireMessage, any Error>.AsyncIterator
    ) {
        self.identity = identity
        self.channel = channel
        self.inbound = inbound
    }

    /// Writes `messages` through the peer pipeline (encrypted, framed), ignoring every bound of this side, and waits
    /// until the last one has reached the kernel. Returns false when the connection closed meanwhile.
    @discardableResult
    func flood(_ messages: [WireMessage]) async -> Bool {
        await Self.write(messages, to: channel)
    }

    private static func write(_ messages: [WireMessage], to channel: any Channel) async -> Bool {
        guard let last = messages.last else { return channel.isActive }
        for message in messages.dropLast() { channel.write(message, promise: nil) }
        let promise = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(last, promise: promise)
        do {
            try await promise.futureResult.get()
            return true
        } catch {
            return false
        }
    }

    /// Floods `make(i)` for i = 0, 1, ... in batches until the connection closes or `deadline` passes; returns
    /// whether it closed.
    func flood(
        until deadline: ContinuousClock.Instant, batch: Int = 256, _ make: @Sendable (Int) -> WireMessage
    ) async -> Bool {
        var i = 0
        while ContinuousClock.now < deadline {
            let messages = (i..<i + batch).map(make)
            i += batch
            // A write that never completes (the other side stopped reading) still ends at the deadline.
            let channel = self.channel
            let written = await withTaskGroup(of: Bool?.self) { group in
                group.addTask { await Self.write(messages, to: channel) }
                group.addTask {
                    try? await Task.sleep(until: deadline, clock: .continuous)
                    return nil
                }
                let first = await group.next()!
                group.cancelAll()
                return first
            }
            guard let written else { break }
            if !written { return true }
        }
        return await waitClosed(until: deadline)
    }

    /// Writes bytes below the encryption layer (a partial frame, garbage), as they are.
    func writeRaw(_ bytes: [UInt8]) async throws {
        let channel = self.channel
        try await channel.eventLoop.flatSubmit {
            do {
                let context = try channel.pipeline.syncOperations.context(handlerType: RawWriter.self)
                return context.writeAndFlush(NIOAny(channel.allocator.buffer(bytes: bytes)))
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        }.get()
    }

    /// Reads the next message the other side sent (nil when the connection ended); reads from the socket only
    /// meanwhile.
    func next() async throws -> WireMessage? {
        try? await channel.setOption(.autoRead, value: true).get()
        defer { channel.setOption(.autoRead, value: false).whenComplete { _ in } }
        return try await inbound.next()
    }

    /// Reads until `match` returns true for a message, or the connection ends; returns the matching message.
    func read(until match: (WireMessage) -> Bool) async throws -> WireMessage? {
        while let message = try await next() {
            if match(message) { return message }
        }
        return nil
    }

    /// Waits until the connection is closed, at most until `deadline`; returns whether it closed. A peer that does
    /// not read does not see the other side's FIN: write keep-alives, which fail once the other side has closed.
    func waitClosed(until deadline: ContinuousClock.Instant) async -> Bool {
        let closed: ()? = try? await waitFor("the connection to close", until: deadline) {
            if isClosed { return true }
            let probe = channel.eventLoop.makePromise(of: Void.self)
            channel.writeAndFlush(WireMessage.keepAlive, promise: probe)
            return false
        }
        return closed != nil || isClosed
    }

    func close() async {
        try? await channel.close()
    }
}

/// The last handler of the hostile peer's pipeline: passes the messages on to `HostilePeer.next`.
final class Collector: ChannelInboundHandler, Sendable {
    typealias InboundIn = WireMessage
    let sink: AsyncThrowingStream<WireMessage, any Error>.Continuation

    init(sink: AsyncThrowingStream<WireMessage, any Error>.Continuation) { self.sink = sink }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { sink.yield(Self.unwrapInboundIn(data)) }
    func channelInactive(context: ChannelHandlerContext) { sink.finish() }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { sink.finish(throwing: error) }
}

/// The first handler of a pipeline: raw bytes written from its context go straight to the socket.
final class RawWriter: ChannelOutboundHandler, Sendable {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
}
