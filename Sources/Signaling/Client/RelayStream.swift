public import NIOCore
public import SignalingProtocol

/// A relay stream to another member of a swarm, carried by the signaling server, which forwards the bytes
/// without reading them. Run an end-to-end encrypted session (Noise) over it: the server sees only ciphertext.
///
/// Iterate it for incoming bytes (the iteration ends when either side closes or the connection to the server
/// drops); ``write(_:)`` sends, ``close()`` ends it for both sides. Relay streams do not survive a reconnect.
public final class RelayStream: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    /// The server-assigned stream id.
    public let id: UInt32
    /// The swarm both ends are members of.
    public let swarm: SwarmID
    /// The other end's device key (as proven to the server).
    public let peer: DeviceID

    let queue: ByteQueue
    private let maxPayload: Int
    private let sender: @Sendable (UInt32, ByteBuffer) async throws -> Void
    private let closer: @Sendable (UInt32) async -> Void

    init(
        id: UInt32, swarm: SwarmID, peer: DeviceID, bufferLimit: Int, maxPayload: Int,
        sender: @escaping @Sendable (UInt32, ByteBuffer) async throws -> Void,
        closer: @escaping @Sendable (UInt32) async -> Void
    ) {
        self.id = id
        self.swarm = swarm
        self.peer = peer
        self.queue = ByteQueue(limit: bufferLimit)
        self.maxPayload = maxPayload
        self.sender = sender
        self.closer = closer
    }

    /// Sends bytes to the other end, split into frames that fit the server's limit. Waits while the connection's
    /// socket is busy. Throws ``SignalClientError/relayClosed`` once the stream is closed.
    public func write(_ bytes: ByteBuffer) async throws {
        var remaining = bytes
        repeat {
            let length = Swift.min(maxPayload, remaining.readableBytes)
            guard let chunk = remaining.readSlice(length: length) else { return }
            try await sender(id, chunk)
        } while remaining.readableBytes > 0
    }

    /// Sends bytes to the other end.
    public func write(_ bytes: [UInt8]) async throws {
        try await write(ByteBuffer(bytes: bytes))
    }

    /// Closes the stream at both ends.
    public func close() async {
        queue.finish()
        await closer(id)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let queue: ByteQueue
        public mutating func next() async -> ByteBuffer? { await queue.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(queue: queue) }
}
