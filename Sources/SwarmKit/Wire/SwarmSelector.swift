internal import Logging
internal import NIOCore

/// The cleartext preamble that names the swarm of a direct connection before its Noise handshake
/// (docs/protocol.md §3.0), so that one listening port serves every swarm of a process.
///
/// ```
/// preamble = "HRPS" (4 ASCII bytes) || u8 version (1) || S (32 bytes, the swarm id of §2.2)
/// ```
///
/// S is what the signaling server already sees of the swarm; the preamble reveals nothing else (not K, not R, not
/// the device key). It proves nothing either: a wrong S only selects a handshake whose pre-shared key the dialler
/// does not have. A responder reads exactly `length` bytes (never more before it has chosen the swarm), closes the
/// connection on a wrong magic or version or an S it does not serve, and gives the whole preamble and handshake
/// `handshakeTimeout`. Relayed connections carry no preamble: the relay request names the swarm.
public enum SwarmSelector {
    public static let magic: [UInt8] = Array("HRPS".utf8)
    public static let version: UInt8 = 1
    /// Bytes of the preamble.
    public static let length = 4 + 1 + 32

    /// The preamble for swarm id `swarmID` (32 bytes).
    public static func preamble(_ swarmID: [UInt8]) -> [UInt8] {
        precondition(swarmID.count == 32, "a swarm id is 32 bytes")
        return magic + [version] + swarmID
    }

    /// The swarm id a preamble names, or nil for a wrong magic, version or length.
    public static func swarmID(in preamble: some Collection<UInt8>) -> [UInt8]? {
        let bytes = Array(preamble)
        guard bytes.count == length, Array(bytes[0..<4]) == magic, bytes[4] == version else { return nil }
        return Array(bytes[5...])
    }
}

/// The initiator's side: writes the preamble when the connection opens, before the handshake's first message (this
/// handler sits first in the pipeline, so the `NoiseHandler` after it sees `channelActive` only once the preamble is
/// written), then leaves the pipeline.
final class SelectorWriter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let preamble: [UInt8]

    init(swarmID: [UInt8]) { preamble = SwarmSelector.preamble(swarmID) }

    func channelActive(context: ChannelHandlerContext) {
        context.write(NIOAny(context.channel.allocator.buffer(bytes: preamble)), promise: nil)
        context.fireChannelActive()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

/// The responder's side: reads the preamble, asks `select` for the configuration of the swarm it names, and puts the
/// peer protocol's handlers (`PeerChannel`) after itself; the bytes that came after the preamble go to them, and this
/// handler leaves the pipeline. An unknown swarm, a malformed preamble or the deadline closes the connection, and
/// `ready` fails with the reason.
final class SelectorReader: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let select: @Sendable ([UInt8]) -> PeerConfiguration?
    private let ready: EventLoopPromise<SelectedSession>
    private let timeout: TimeAmount
    private let logger: Logger
    private var buffered: ByteBuffer?
    private var deadline: Scheduled<Void>?
    private var done = false

    init(
        select: @escaping @Sendable ([UInt8]) -> PeerConfiguration?, ready: EventLoopPromise<SelectedSession>,
        timeout: TimeAmount, logger: Logger
    ) {
        self.select = select
        self.ready = ready
        self.timeout = timeout
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        let ready = self.ready
        let timeout = self.timeout
        deadline = context.eventLoop.scheduleTask(in: timeout) {
            ready.fail(PeerConnectionError.handshakeTimeout(timeout))
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    func channelInactive(context: ChannelHandlerContext) {
        ready.fail(PeerConnectionError.closedDuringHandshake)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        var incoming = unwrapInboundIn(data)
        if buffered == nil { buffered = context.channel.allocator.buffer(capacity: SwarmSelector.length) }
        // Never more than the preamble before the swarm is chosen: the rest stays in `incoming`.
        let needed = SwarmSelector.length - buffered!.readableBytes
        if var head = incoming.readSlice(length: min(needed, incoming.readableBytes)) {
            buffered!.writeBuffer(&head)
        }
        guard buffered!.readableBytes == SwarmSelector.length else { return }
        done = true
        deadline?.cancel()
        guard let id = SwarmSelector.swarmID(in: buffered!.readableBytesView) else {
            logger.info("a peer connection began without a valid swarm preamble")
            return refuse(PeerConnectionError.unknownSwarm, context: context)
        }
        guard let configuration = select(id) else {
            logger.debug("a peer asked for a swarm this process does not serve")
            return refuse(PeerConnectionError.unknownSwarm, context: context)
        }
        do {
            let session = try PeerChannel.addHandlers(
                to: context.channel, role: .responder, configuration: configuration, position: .after(self))
            ready.completeWith(session.map { SelectedSession(session: $0, swarmID: id) })
        } catch {
            return refuse(error, context: context)
        }
        if incoming.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(incoming)) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    /// Fails `ready` (a promise already completed ignores it) and closes the connection.
    private func refuse(_ error: any Error, context: ChannelHandlerContext) {
        ready.fail(error)
        context.close(promise: nil)
    }
}

/// A responder's session and the swarm its preamble chose (nil on a listener for one swarm, which reads no preamble).
public struct SelectedSession: Sendable {
    public let session: PeerSession
    public let swarmID: [UInt8]?
}
