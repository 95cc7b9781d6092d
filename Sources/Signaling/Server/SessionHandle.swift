import NIOCore
import SignalingProtocol

/// What a session's writer sends next: a control message, or an error after which the connection closes.
enum Outgoing: Sendable {
    case message(Message)
    case closeWithError(SignalErrorCode, String)
    /// The hello timer fired: the writer asks the state machine whether the session must close.
    case helloDeadline
}

/// How the hub and other sessions reach one authenticated connection.
final class SessionHandle: Sendable {
    /// Unique per connection for the server's lifetime; tells a replaced connection from its successor.
    let id: UInt64
    let device: DeviceID
    let remoteAddress: String
    /// The round trip from sending `challenge` to receiving `hello`, which times hole punches (docs/nat.md).
    let rtt: Duration?
    /// Whether the client said in `hello` that it understands `punch`, and `spray`.
    let canPunch: Bool
    let canSpray: Bool
    /// Where the server saw the connection come from (the client's public address when it is behind a NAT): what the
    /// other end of a spray punch dials (docs/nat.md, "Spray punching").
    let observedHost: String?
    private let outbox: AsyncStream<Outgoing>.Continuation
    private let binaryWriter: @Sendable (ByteBuffer) async throws -> Void

    init(
        id: UInt64, device: DeviceID, remoteAddress: String, outbox: AsyncStream<Outgoing>.Continuation,
        rtt: Duration? = nil, canPunch: Bool = false, canSpray: Bool = false, observedHost: String? = nil,
        binaryWriter: @escaping @Sendable (ByteBuffer) async throws -> Void
    ) {
        self.id = id
        self.device = device
        self.remoteAddress = remoteAddress
        self.rtt = rtt
        self.canPunch = canPunch
        self.canSpray = canSpray
        self.observedHost = observedHost
        self.outbox = outbox
        self.binaryWriter = binaryWriter
    }

    /// Queues a control message. A connection whose outbox is full does not read its events: it is closed.
    func send(_ message: Message) {
        if case .dropped = outbox.yield(.message(message)) {
            outbox.finish()
        }
    }

    /// Queues a final error; the session closes after writing it.
    func close(_ code: SignalErrorCode, _ reason: String) {
        if case .dropped = outbox.yield(.closeWithError(code, reason)) {
            outbox.finish()
        }
    }

    /// Writes a relay frame straight to the socket, waiting for the socket to accept it (backpressure).
    func writeBinary(_ buffer: ByteBuffer) async throws {
        try await binaryWriter(buffer)
    }
}

/// One relay stream between two members of a swarm.
final class Relay: Sendable {
    let id: UInt32
    let swarm: SwarmID
    let opener: SessionHandle
    let acceptor: SessionHandle
    let bucket: SharedTokenBucket

    init(
        id: UInt32, swarm: SwarmID, opener: SessionHandle, acceptor: SessionHandle, bytesPerSecond: Double,
        burst: Double
    ) {
        self.id = id
        self.swarm = swarm
        self.opener = opener
        self.acceptor = acceptor
        self.bucket = SharedTokenBucket(rate: bytesPerSecond, burst: burst)
    }

    /// The other end as seen from `handle`, or `nil` if `handle` is not an end of this relay.
    func otherEnd(from handle: SessionHandle) -> SessionHandle? {
        if handle === opener { return acceptor }
        if handle === acceptor { return opener }
        return nil
    }
}
