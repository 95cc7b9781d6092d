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

    @Test func sendWaitsWhileThePeerDoesNotReadAndFinishClosesAnyway() async throws {
        let (connection, listener) = try await Self.connectionToAPeerThatNeverReads()
        let sender = connection.sender
        let block = ByteBuffer(repeating: 0x5A, count: Int(WireLimits.maxBlockLength))
        let sending = Task {
            for index in 0..<1000 {
                try await sender.send(.piece(Piece(chunk: UInt32(index), offset: 0, data: block)))
                #expect(sender.bufferedBytes <= sender.queueLimit + block.readableBytes + 14)
            }
        }
        // The writer stops once the kernel's buffers are full: the backlog is over the bulk limit (at most the queue
        // limit, and falling with the rate, which is nothing from now on), and the next `send` waits (the task is
        // still running below, and `finish` makes it throw).
        try await waitFor("the writer to fill the send queue", seconds: 20) {
            sender.bufferedBytes > 0 && sender.bufferedBytes > sender.bulkLimit
        }
        #expect(sender.peakBufferedBytes <= sender.queueLimit + block.readableBytes + 14)
        // finish does not wait for the queue to drain: the goodbye cannot be written, the connection closes anyway.
        try await connection.finish(reason: .normal, grace: .milliseconds(200))
        #expect(!connection.channel.channel.isActive)
        await #expect(throws: (any Error).self) { try await sending.value }
        try await listener.close()
    }

    /// What `send` lets wait follows the connection's rate: `queueTime` of it, never more than `queueLimit`; the
    /// kernel's unsent limit the same, never under `minimumKernelUnsent`.
    @Test func theLimitsFollowTheRate() {
        #expect(PeerSender.bulkLimit(rate: 0, cap: 512 * 1024) == 0)
        #expect(PeerSender.bulkLimit(rate: 1_000_000, cap: 512 * 1024) == 50_000)
        #expect(PeerSender.bulkLimit(rate: 1e9, cap: 512 * 1024) == 512 * 1024)
        #expect(PeerSender.kernelLimit(rate: 0, cap: 256 * 1024) == PeerSender.minimumKernelUnsent)
        #expect(PeerSender.kernelLimit(rate: 2_000_000, cap: 256 * 1024) == 100_000)
        #expect(PeerSender.kernelLimit(rate: 1e9, cap: 256 * 1024) == 256 * 1024)
    }

    /// A peer that takes about 1.3 MB/s (one block every 100 ms): once the kernel's buffers are full, the bulk data
    /// waiting in user space stays near `queueTime` of that rate, far under the 512 KiB of `queueLimit`, and the
    /// kernel's unsent limit is lowered from 256 KiB. A control message written now waits behind that much, not
    /// behind 768 KiB (seconds on a slow uplink shared by several connections).
    @Test func onASlowConnectionLittleWaitsAheadOfAControlMessage() async throws {
        var configuration = LoopbackTests.configuration()
        configuration.inboundLowWatermark = 1
        configuration.inboundHighWatermark = 2
        let listener = try await PeerListener.bind(host: "127.0.0.1", port: 0, configuration: configuration)
        let port = try LoopbackTests.port(listener)
        let reader = Task {
            try? await listener.run { connection in
                try await connection.channel.executeThenClose { inbound, _ in
                    for try await _ in inbound { try await Task.sleep(for: .milliseconds(100)) }
                }
            }
        }
        let connection = try await PeerConnection.connect(
            host: "127.0.0.1", port: port, configuration: LoopbackTests.configuration())
        let sender = connection.sender
        #expect(sender.kernelUnsentLimit == 256 * 1024)
        let block = ByteBuffer(repeating: 0x5A, count: Int(WireLimits.maxBlockLength))
        let sending = Task {
            for index in 0..<10_000 {
                try await sender.send(.piece(Piece(chunk: UInt32(index), offset: 0, data: block)))
            }
        }
        // The start fills the kernel's buffers at once, which the rate counts as a burst; it fades within a few
        // seconds (the rate's time constant is 1 s).
        try await waitFor("the bulk limit to fall to the reader's pace", seconds: 30) {
            sender.bulkLimit < 200 * 1024 && (sender.kernelUnsent ?? .max) < 200 * 1024
        }
        var peak = 0
        let until = ContinuousClock.now + .seconds(1)
        while ContinuousClock.now < until {
            peak = max(peak, sender.bufferedBytes)
            try await Task.sleep(for: .milliseconds(5))
        }
        // At most the limit (under 200 KiB) plus the one block a waiting `send` writes when it is reached.
        #expect(peak <= 200 * 1024 + block.readableBytes + 14)
        #expect(peak < sender.queueLimit)
        sending.cancel()
        try await connection.finish(reason: .normal, grace: .milliseconds(200))
        try await listener.close()
        reader.cancel()
    }
}
