import Logging
import NIOCore
import NIOEmbedded

@testable import SwarmKit

/// Two peer pipelines on embedded channels, wired back to back by `pump()`; virtual time only.
final class EmbeddedPair {
    let initiator = EmbeddedChannel()
    let responder = EmbeddedChannel()
    let initiatorReady: EventLoopFuture<PeerSession>
    let responderReady: EventLoopFuture<PeerSession>
    let initiatorIdentity = DeviceIdentity.generate()
    let responderIdentity = DeviceIdentity.generate()
    /// Errors that reached the end of either pipeline (forwarded to the application).
    var errors: [any Error] = []

    init(
        initiatorKey: SecureBytes = PeerHandshakeTests.keyA, responderKey: SecureBytes = PeerHandshakeTests.keyA,
        configure: (inout PeerConfiguration) -> Void = { _ in }
    ) throws {
        var a = PeerConfiguration(identity: initiatorIdentity, swarmKey: initiatorKey)
        a.cipher = .chaChaPoly
        a.logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        configure(&a)
        var b = PeerConfiguration(identity: responderIdentity, swarmKey: responderKey)
        b.logger = a.logger
        configure(&b)
        b.cipher = a.cipher
        initiatorReady = try PeerChannel.addHandlers(to: initiator, role: .initiator, configuration: a)
        responderReady = try PeerChannel.addHandlers(to: responder, role: .responder, configuration: b)
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        try responder.connect(to: address).wait()
        try initiator.connect(to: address).wait()
    }

    /// Moves bytes between the two channels until neither has anything left to send.
    func pump(tamper: (inout ByteBuffer) -> Void = { _ in }) {
        var moved = true
        while moved {
            moved = false
            for (from, to) in [(initiator, responder), (responder, initiator)] {
                while let bytes = try? from.readOutbound(as: ByteBuffer.self) {
                    moved = true
                    var bytes = bytes
                    if from === initiator { tamper(&bytes) }
                    guard to.isActive else { continue }
                    do { try to.writeInbound(bytes) } catch { errors.append(error) }
                }
            }
        }
    }

    /// The messages that reached the application of `channel`.
    func received(on channel: EmbeddedChannel) -> [WireMessage] {
        var messages: [WireMessage] = []
        while let message = try? channel.readInbound(as: WireMessage.self) { messages.append(message) }
        return messages
    }

    /// Writes raw plaintext below the message encoder of `channel`, as a broken or hostile peer would.
    func sendRawPlaintext(_ bytes: ByteBuffer, from channel: EmbeddedChannel) throws {
        let context = try channel.pipeline.syncOperations.context(handlerType: MessageEncoder.self)
        context.writeAndFlush(NIOAny(bytes), promise: nil)
    }
}
