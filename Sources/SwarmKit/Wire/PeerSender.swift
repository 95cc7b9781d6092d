public import NIOCore

/// Sends messages on a peer connection with a hard bound on what waits in user space.
///
/// `NIOAsyncChannel`'s outbound writer follows channel writability, but it learns about it one event
/// loop hop late, so a producer that is faster than encryption can queue many megabytes before the
/// writer suspends. `PeerSender` counts the bytes it has handed to the channel whose writes have not yet
/// completed (reached the kernel) and suspends `send` while they exceed `limit`: a peer that reads
/// slowly, or not at all, holds the sender to `limit` plus one message.
public actor PeerSender {
    private let channel: any Channel
    private let limit: Int
    private var inFlight: [(future: EventLoopFuture<Void>, bytes: Int)] = []
    private var inFlightHead = 0
    private var inFlightBytes = 0

    /// `limit` is the most bytes of messages waiting to be written (default 4 MiB).
    public init(channel: any Channel, limit: Int = 4 * 1024 * 1024) {
        precondition(limit > 0)
        self.channel = channel
        self.limit = limit
    }

    /// The bytes handed to the channel whose writes have not completed yet.
    public var bufferedBytes: Int { inFlightBytes }

    /// Writes and flushes `message`; suspends while more than `limit` bytes are still waiting.
    ///
    /// - Throws: the channel's error when the connection is gone.
    public func send(_ message: WireMessage) async throws {
        let bytes = 6 + message.bodyLength
        let promise = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(message, promise: promise)
        inFlight.append((promise.futureResult, bytes))
        inFlightBytes += bytes
        while inFlightBytes > limit, inFlightHead < inFlight.count {
            let oldest = inFlight[inFlightHead]
            inFlightHead += 1
            defer { inFlightBytes -= oldest.bytes }
            try await oldest.future.get()
        }
        if inFlightHead > 1024 {
            inFlight.removeFirst(inFlightHead)
            inFlightHead = 0
        }
    }

    /// Waits until everything sent so far has been written.
    public func drain() async throws {
        while inFlightHead < inFlight.count {
            let oldest = inFlight[inFlightHead]
            inFlightHead += 1
            inFlightBytes -= oldest.bytes
            try await oldest.future.get()
        }
        inFlight.removeAll()
        inFlightHead = 0
    }
}
