import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import SwarmKit

/// Two peers over real loopback TCP (port 0): handshake, messages both ways, wrong K, backpressure.
@Suite struct LoopbackTests {
    static func configuration(
        _ identity: DeviceIdentity = .generate(), key: SecureBytes = PeerHandshakeTests.keyA
    ) -> PeerConfiguration {
        var configuration = PeerConfiguration(identity: identity, swarmKey: key)
        configuration.logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        return configuration
    }

    static func port(_ listener: PeerListener) throws -> Int {
        try #require(listener.localAddress?.port)
    }

    @Test func handshakeAndMessagesOverTCP() async throws {
        let server = DeviceIdentity.generate(), client = DeviceIdentity.generate()
        let listener = try await PeerListener.bind(
            host: "127.0.0.1", port: 0, configuration: Self.configuration(server))
        let port = try Self.port(listener)
        async let serving: Void = listener.run { connection in
            #expect(connection.session.remoteDeviceKey == client.publicKey)
            try await connection.channel.executeThenClose { inbound, outbound in
                for try await message in inbound {
                    switch message {
                    case .interested:
                        try await outbound.write(.unchoke)
                        try await outbound.write(.have(chunk: 7))
                    case .request(let block):
                        let data = ByteBuffer(repeating: UInt8(block.chunk), count: Int(block.length))
                        try await outbound.write(.piece(Piece(chunk: block.chunk, offset: block.offset, data: data)))
                    default:
                        break
                    }
                }
            }
        }
        var configuration = Self.configuration(client)
        configuration.expectedRemoteDeviceKey = server.publicKey
        let connection = try await PeerConnection.connect(host: "127.0.0.1", port: port, configuration: configuration)
        #expect(connection.session.remoteDeviceKey == server.publicKey)
        #expect(connection.session.cipher == .preferred)
        try await connection.channel.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            try await outbound.write(.interested)
            #expect(try await iterator.next() == .unchoke)
            #expect(try await iterator.next() == .have(chunk: 7))
            try await outbound.write(.request(BlockRequest(chunk: 7, offset: 0, length: WireLimits.maxBlockLength)))
            let piece = try await iterator.next()
            #expect(
                piece
                    == .piece(
                        Piece(
                            chunk: 7, offset: 0, data: ByteBuffer(repeating: 7, count: Int(WireLimits.maxBlockLength))))
            )
            try await connection.finish()
        }
        try await listener.close()
        try await serving
    }

    /// One direction of an in-memory byte pipe that records what crosses it, like a relay would see it.
    final class RecordingPipe: Sendable {
        let stream: AsyncStream<ByteBuffer>
        let continuation: AsyncStream<ByteBuffer>.Continuation
        let seen = Mutex<[UInt8]>([])
        let closed = Atomic<Int>(0)

        init() { (stream, continuation) = AsyncStream<ByteBuffer>.makeStream() }

        func write(_ buffer: ByteBuffer) {
            seen.withLock { $0 += Array(buffer.readableBytesView) }
            continuation.yield(buffer)
        }

        func close() {
            closed.add(1, ordering: .relaxed)
            continuation.finish()
        }
    }

    @Test(.timeLimit(.minutes(1))) func handshakeAndMessagesOverARelayedStream() async throws {
        let server = DeviceIdentity.generate(), client = DeviceIdentity.generate()
        let toServer = RecordingPipe(), toClient = RecordingPipe()
        let (closes, closed) = AsyncStream<Void>.makeStream()
        let closeBoth: @Sendable () async -> Void = {
            toServer.close()
            toClient.close()
            closed.yield()
        }
        var clientConfiguration = Self.configuration(client)
        clientConfiguration.expectedRemoteDeviceKey = server.publicKey
        var serverConfiguration = Self.configuration(server)
        serverConfiguration.enforceAnnouncements = false
        // The relay's pump runs on the shared cooperative pool, which CPU-bound suites running alongside can hold for
        // seconds on a 2-core machine: the handshake deadline here is about the protocol, not about that.
        clientConfiguration.handshakeTimeout = .seconds(40)
        serverConfiguration.handshakeTimeout = .seconds(40)
        async let accepted = PeerConnection.over(
            stream: toServer.stream, role: .responder, configuration: serverConfiguration,
            write: { toClient.write($0) }, close: closeBoth)
        let connection = try await PeerConnection.over(
            stream: toClient.stream, role: .initiator, configuration: clientConfiguration,
            write: { toServer.write($0) }, close: closeBoth)
        let responder = try await accepted
        #expect(connection.session.remoteDeviceKey == server.publicKey)
        #expect(responder.session.remoteDeviceKey == client.publicKey)

        let block = ByteBuffer(repeating: 0x5A, count: Int(WireLimits.maxBlockLength))
        async let served: Void = responder.channel.executeThenClose { inbound, outbound in
            for try await message in inbound {
                if case .request(let request) = message {
                    try await outbound.write(.piece(Piece(chunk: request.chunk, offset: request.offset, data: block)))
                }
            }
        }
        try await connection.channel.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            for chunk in 0..<8 {
                let request = BlockRequest(chunk: UInt32(chunk), offset: 0, length: WireLimits.maxBlockLength)
                try await outbound.write(.request(request))
                #expect(try await iterator.next() == .piece(Piece(chunk: UInt32(chunk), offset: 0, data: block)))
            }
            try await connection.finish()
        }
        // The client's goodbye closed its end: the responder's inbound ended, and the stream was closed.
        try await served
        var closings = closes.makeAsyncIterator()
        #expect(await closings.next() != nil)
        // What crossed the pipe is ciphertext: 1 MiB of 0x5A went through without a run of 32 of them in the clear.
        let relayed = toClient.seen.withLock { $0 }
        #expect(relayed.count > 8 * Int(WireLimits.maxBlockLength))
        var run = 0
        var longest = 0
        for byte in relayed {
            run = byte == 0x5A ? run + 1 : 0
            longest = max(longest, run)
        }
        #expect(longest < 32)
    }

    @Test func wrongSwarmKeyFailsOverTCP() async throws {
        let listener = try await PeerListener.bind(host: "127.0.0.1", port: 0, configuration: Self.configuration())
        let port = try Self.port(listener)
        async let serving: Void = listener.run { _ in Issue.record("a peer without K got through") }
        await #expect(throws: (any Error).self) {
            _ = try await PeerConnection.connect(
                host: "127.0.0.1", port: port,
                configuration: Self.configuration(key: PeerHandshakeTests.keyB))
        }
        try await listener.close()
        try await serving
    }

    /// A reader that does not read must stop the writer long before the whole "file" is buffered.
    @Test func slowReaderStopsTheWriter() async throws {
        let blockCount = 2048  // 256 MiB of 128 KiB blocks
        let block = ByteBuffer(repeating: 0x5A, count: Int(WireLimits.maxBlockLength))
        let (startReading, startReadingContinuation) = AsyncStream<Void>.makeStream()
        var serverConfiguration = Self.configuration()
        serverConfiguration.enforceAnnouncements = false
        let listener = try await PeerListener.bind(host: "127.0.0.1", port: 0, configuration: serverConfiguration)
        let port = try Self.port(listener)
        let received = Counter()
        async let serving: Void = listener.run { connection in
            try await connection.channel.executeThenClose { inbound, _ in
                for await _ in startReading { break }
                for try await message in inbound {
                    if case .piece(let piece) = message {
                        received.value.add(piece.data.readableBytes, ordering: .relaxed)
                    }
                }
            }
        }
        let configuration = Self.configuration()
        let connection = try await PeerConnection.connect(host: "127.0.0.1", port: port, configuration: configuration)
        let written = Counter()
        try await connection.channel.executeThenClose { _, _ in
            async let writing: Void = {
                for index in 0..<blockCount {
                    try await connection.sender.send(.piece(Piece(chunk: UInt32(index), offset: 0, data: block)))
                    written.value.add(1, ordering: .relaxed)
                    let buffered = connection.sender.bufferedBytes
                    #expect(buffered <= configuration.sendQueueLimit + block.readableBytes + 14)
                }
                try await connection.finish()
            }()
            // Wait until the queue is over its bulk limit (the queue limit at most, and falling with the rate, which
            // is nothing once the kernel's buffers are full): the writer now waits in `send`. Then check how far it
            // got.
            let sender = connection.sender
            try await waitFor("the writer to fill the send queue") {
                sender.bufferedBytes > 0 && sender.bufferedBytes > sender.bulkLimit
            }
            let aheadBytes = written.value.load(ordering: .relaxed) * block.readableBytes
            #expect(
                aheadBytes < 64 * 1024 * 1024, "writer got \(aheadBytes) bytes ahead of a reader that reads nothing")
            startReadingContinuation.yield()
            startReadingContinuation.finish()
            try await writing
        }
        try await listener.close()
        try await serving
        #expect(received.value.load(ordering: .relaxed) == blockCount * block.readableBytes)
    }
}

/// A counter shared between tasks.
final class Counter: Sendable {
    let value = Atomic<Int>(0)
}
