import HummingbirdWSClient
import NIOCore
import NIOWebSocket
import Synchronization

@testable import SignalingClient
@testable import SignalingProtocol
@testable import SignalingServer

/// What a hand-driven WebSocket connection saw: the server's text messages and its close code.
struct RawOutcome: Sendable {
    var messages: [Message] = []
    var closeCode: WebSocketErrorCode?

    var errorCodes: [SignalErrorCode] {
        messages.compactMap { if case .error(let error) = $0 { error.code } else { nil } }
    }
}

/// Connects without the client library, lets `script` misbehave after the challenge (or at once when the first
/// message is not a challenge), then reads until the server closes.
func rawSession(
    url: String,
    _ script: @escaping @Sendable (_ challenge: Message.Challenge?, WebSocketOutboundWriter) async throws -> Void
) async throws -> RawOutcome {
    let seen = Mutex(RawOutcome())
    let close = try await WebSocketClient.connect(
        url: url, configuration: .init(maxFrameSize: 1 << 20), logger: makeTestLogger("test.raw")
    ) { inbound, outbound, _ in
        try await outbound.write(.text(MessageCodec.encode(.open(.init(version: Signaling.protocolVersion)))))
        var first = true
        for try await message in inbound.messages(maxSize: 1 << 20) {
            guard case .text(let text) = message, let decoded = try? MessageCodec.decode(text, maxBytes: 1 << 20) else {
                continue
            }
            seen.withLock { $0.messages.append(decoded) }
            if first {
                first = false
                if case .challenge(let challenge) = decoded {
                    try await script(challenge, outbound)
                } else {
                    try await script(nil, outbound)
                }
            }
        }
    }
    return seen.withLock { outcome in
        outcome.closeCode = close?.closeCode
        return outcome
    }
}

/// A hello with a signature over the wrong bytes: a failed device proof.
func badHello() -> Message {
    let device = Ed25519Signer()
    let signature = (try? device.sign(Array("not the challenge".utf8))) ?? []
    return .hello(
        .init(
            version: Signaling.protocolVersion, device: device.publicKey, signature: HexBytes(signature), joinProof: nil
        ))
}

/// A correct hello for `challenge`.
func goodHello(_ challenge: Message.Challenge, device: Ed25519Signer, joinKey: [UInt8]? = nil) throws -> Message {
    let signature = try device.sign(Proofs.helloMessage(nonce: challenge.nonce.bytes, device: device.publicKey))
    let proof = joinKey.map { Proofs.joinKeyProof(joinKey: $0, nonce: challenge.nonce.bytes, device: device.publicKey) }
    return .hello(
        .init(
            version: Signaling.protocolVersion, device: device.publicKey, signature: HexBytes(signature),
            joinProof: proof.map(HexBytes.init)))
}

extension WebSocketOutboundWriter {
    func send(_ message: Message) async throws {
        try await write(.text(MessageCodec.encode(message)))
    }
}
