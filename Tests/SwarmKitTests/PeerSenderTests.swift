import Logging
import NIOCore
import Testing

@testable import SwarmKit

/// `PeerSender`, the one bounded outbound queue of a connection, against a peer that reads nothing.
@Suite(.timeLimit(.minutes(1))) struct PeerSenderTests {
    /// A listener whose connections never read, and a connection to it.
    static func connectionToAPeerThatNeverReads() async throws -> (PeerConnection, PeerListener) {
        var configuration = LoopbackTests.configuration()
        configuration.inboundLowWatermark = 1
        configuration.inboundHighWatermark = 2
        let listener = try await PeerListener.bind(host: "127.0.0.1", port: 0, configuration: configuration)
        let port = try LoopbackTests.port(listener)
        Task {
            try? await listener.run { connection in
                // Hold the connection open without reading until the other side closes it.
                try await connection.channel.channel.closeFuture.get()
            }
        }
        let connection = try await PeerConnection.connect(
            host: "127.0.0.1", port: port, configuration: LoopbackTests.configuration())
        return (connection, listener)
    }

    @Test func enqueueRefusesToLetTheBacklogPassItsLimit() async throws {
        let (connection, listener) = try await Self.connectionToAPeerThatNeverReads()
        let sender = connection.sender
        let bitfield = WireMessage.bitfield(Bitfield(chunkCount: WireLimits.maxBitfieldChunks))
        var refusal: PeerSendError?
        // 1,000 messages of 256 KiB: far more than the kernel's buffers and the limit together.
        for _ in 0..<1000 {
            do {
                try sender.enqueue(bitfield)
            } catch {
                refusal = error
                break
            }
            #expect(sender.bufferedBytes <= sender.backlogLimit)
        }
        guard case .backlogExceeded(_, _, let limit) = refusal else {
            Issue.record("the backlog never filled: \(String(describing: refusal))")
            return
        }
        #expect(limit == sender.backlogLimit)
        #expect(sender.peakBufferedBytes <= sender.backlogLimit)
        // Ending the connection does not wait for a peer that does not read.
        try await connection.finish(reason: .normal, grace: .milliseconds(200))
        #expect(!connection.channel.channel.isActive)
        try await listener.close()
    }

    @Test func sendWaitsAtTheQueueLimitAndFinishClosesAnyway() async throws {
        let (connection, listener) = try await Self.connectionToAPeerThatNeverReads()
        let sender = connection.sender
        let block = ByteBuffer(repeating: 0x5A, count: Int(WireLimits.maxBlockLength))
        let sending = Task {
            for index in 0..<1000 {
                try await sender.send(.piece(Piece(chunk: UInt32(index), offset: 0, data: block)))
                #expect(sender.bufferedBytes <= sender.queueLimit + block.readableBytes + 14)
            }
        }
        // The writer stops once the kernel's buffers and the queue are full: the backlog is over the queue limit, and
        // the next `send` waits (the task is still running below, and `finish` makes it throw).
        try await waitFor("the writer to fill the send queue", seconds: 20) { sender.bufferedBytes > sender.queueLimit }
        #expect(sender.peakBufferedBytes <= sender.queueLimit + block.readableBytes + 14)
        // finish does not wait for the queue to drain: the goodbye cannot be written, the connection closes anyway.
        try await connection.finish(reason: .normal, grace: .milliseconds(200))
        #expect(!connection.channel.channel.isActive)
        await #expect(throws: (any Error).self) { try await sending.value }
        try await listener.close()
    }
}
