import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

@testable import SwarmKit

/// One listening port for several swarms: the cleartext preamble names S, the listener picks that swarm's K
/// (docs/protocol.md §3.0).
@Suite struct SwarmSelectorTests {
    static let swarmA = [UInt8](repeating: 0xA1, count: 32)
    static let swarmB = [UInt8](repeating: 0xB2, count: 32)

    /// A listener serving swarm A with key A and swarm B with key B.
    static func listener(timeout: TimeAmount = .seconds(10)) async throws -> PeerListener {
        var template = LoopbackTests.configuration()
        template.handshakeTimeout = timeout
        let identity = DeviceIdentity.generate()
        return try await PeerListener.bind(
            host: "127.0.0.1", port: 0, template: template,
            select: { id in
                switch id {
                case swarmA: LoopbackTests.configuration(identity, key: PeerHandshakeTests.keyA)
                case swarmB: LoopbackTests.configuration(identity, key: PeerHandshakeTests.keyB)
                default: nil
                }
            })
    }

    static func client(selector: [UInt8]?, key: SecureBytes) -> PeerConfiguration {
        var configuration = LoopbackTests.configuration(key: key)
        configuration.swarmSelector = selector
        return configuration
    }

    @Test func thePreambleNamesTheSwarmAndNothingElse() throws {
        let preamble = SwarmSelector.preamble(Self.swarmA)
        #expect(preamble.count == SwarmSelector.length)
        #expect(Array(preamble.prefix(5)) == Array("HRPS".utf8) + [1])
        #expect(SwarmSelector.swarmID(in: preamble) == Self.swarmA)
        var wrongMagic = preamble
        wrongMagic[0] = UInt8(ascii: "X")
        var wrongVersion = preamble
        wrongVersion[4] = 2
        #expect(SwarmSelector.swarmID(in: wrongMagic) == nil)
        #expect(SwarmSelector.swarmID(in: wrongVersion) == nil)
        #expect(SwarmSelector.swarmID(in: preamble.dropLast()) == nil)
    }

    /// Connections for two swarms meet on one port, each with its own key, and the listener reports which swarm.
    @Test func oneListenerServesTwoSwarms() async throws {
        let listener = try await Self.listener()
        let port = try LoopbackTests.port(listener)
        let (selected, sink) = AsyncStream.makeStream(of: [UInt8]?.self)
        async let serving: Void = listener.run { connection in
            sink.yield(connection.swarmID)
            try await connection.channel.executeThenClose { inbound, outbound in
                for try await message in inbound where message == .interested {
                    try await outbound.write(.unchoke)
                }
            }
        }
        var reported: [[UInt8]?] = []
        var iterator = selected.makeAsyncIterator()
        for (id, key) in [(Self.swarmA, PeerHandshakeTests.keyA), (Self.swarmB, PeerHandshakeTests.keyB)] {
            let connection = try await PeerConnection.connect(
                host: "127.0.0.1", port: port, configuration: Self.client(selector: id, key: key))
            try await connection.channel.executeThenClose { inbound, outbound in
                var messages = inbound.makeAsyncIterator()
                try await outbound.write(.interested)
                #expect(try await messages.next() == .unchoke)
            }
            reported.append(await iterator.next() ?? nil)
        }
        #expect(reported == [Self.swarmA, Self.swarmB])
        try await listener.close()
        try await serving
    }

    /// The preamble selects a key, it proves nothing: S of swarm A with the key of swarm B fails the handshake, and
    /// so do an S the listener does not serve and a connection without a preamble.
    @Test func aWrongOrMissingSelectorGetsNoConnection() async throws {
        let listener = try await Self.listener()
        let port = try LoopbackTests.port(listener)
        async let serving: Void = listener.run { _ in Issue.record("a connection got through") }
        let attempts: [([UInt8]?, SecureBytes)] = [
            (Self.swarmA, PeerHandshakeTests.keyB),
            ([UInt8](repeating: 0xEE, count: 32), PeerHandshakeTests.keyA),
            (nil, PeerHandshakeTests.keyA),
        ]
        for (selector, key) in attempts {
            await #expect(throws: (any Error).self) {
                _ = try await PeerConnection.connect(
                    host: "127.0.0.1", port: port, configuration: Self.client(selector: selector, key: key))
            }
        }
        try await listener.close()
        try await serving
    }

    /// A preamble that arrives one byte at a time selects its swarm: the peer protocol's handlers take the place of
    /// the reader, and nothing past the preamble was read before the swarm was chosen.
    @Test func aPreambleInPiecesSelects() throws {
        let channel = EmbeddedChannel()
        let ready = channel.eventLoop.makePromise(of: SelectedSession.self)
        try channel.pipeline.syncOperations.addHandler(
            SelectorReader(
                select: { $0 == Self.swarmB ? LoopbackTests.configuration() : nil }, ready: ready,
                timeout: .seconds(10),
                logger: Logger(label: "test")))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        for byte in SwarmSelector.preamble(Self.swarmB) {
            #expect(throws: (any Error).self) { try channel.pipeline.syncOperations.handler(type: NoiseHandler.self) }
            try channel.writeInbound(channel.allocator.buffer(bytes: [byte]))
        }
        // Swarm B's handlers are in place (any other id would have closed the channel), the reader is gone.
        #expect(channel.isActive)
        _ = try channel.pipeline.syncOperations.handler(type: NoiseHandler.self)
        #expect(throws: (any Error).self) { try channel.pipeline.syncOperations.handler(type: SelectorReader.self) }
        ready.fail(PeerConnectionError.unknownSwarm)
        _ = try? channel.finish()
    }

    /// A preamble that stops short is closed at the deadline.
    @Test(.timeLimit(.minutes(1))) func aStalledPreambleIsClosed() async throws {
        let listener = try await Self.listener(timeout: .seconds(1))
        let port = try LoopbackTests.port(listener)
        async let serving: Void = listener.run { _ in }
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port).get()
        // Under load the deadline may pass before the write: the connection is closed either way.
        try? await channel.writeAndFlush(
            channel.allocator.buffer(bytes: SwarmSelector.preamble(Self.swarmA).prefix(SwarmSelector.length - 1)))
        // Short by one byte: the listener closes the connection once its deadline passes.
        try await channel.closeFuture.get()
        try await listener.close()
        try await serving
    }

    /// The listener sets SO_REUSEPORT (hole punching dials from its port): a second listener on the same fixed port,
    /// as a second process with the same `--listen HOST:PORT` would be, must be refused instead of sharing the port.
    @Test func aFixedPortAnotherListenerHoldsIsRefused() async throws {
        let first = try await Self.listener()
        let port = try LoopbackTests.port(first)
        for host in ["127.0.0.1", "0.0.0.0"] {
            await #expect(throws: PeerListenerError.self) {
                let second = try await PeerListener.bind(
                    host: host, port: port, template: LoopbackTests.configuration(), select: { _ in nil })
                try await second.close()
            }
            await #expect(throws: PeerListenerError.self) {
                let second = try await PeerListener.bind(
                    host: host, port: port, configuration: LoopbackTests.configuration())
                try await second.close()
            }
        }
        try await first.close()
        // Once the first is closed the port is free again: the probe does not refuse a port nobody listens on.
        let again = try await PeerListener.bind(
            host: "127.0.0.1", port: port, template: LoopbackTests.configuration(), select: { _ in nil })
        #expect(again.localAddress?.port == port)
        try await again.close()
    }
}
