import Foundation
import HarpBasics
import HummingbirdWSClient
import Logging
import NIOCore
import SignalingProtocol

/// One simulated peer, speaking the protocol of docs/signaling.md directly (JSON by hand, as a second
/// implementation would): open → challenge → hello → welcome; at its slot in the join phase, join → joined; then it
/// stays connected, reading events, until the run ends.
struct LoadPeer: Sendable {
    let index: Int
    let swarm: Ed25519Signer
    let joinDelay: Double
    let run: LoadRun

    private enum Step { case awaitingChallenge, awaitingWelcome, awaitingJoined(ContinuousClock.Instant), holding }

    func run(url: String) async {
        let device = Ed25519Signer()
        do {
            try await WebSocketClient.connect(url: url, logger: run.logger) { inbound, outbound, _ in
                var step = Step.awaitingChallenge
                var iterator = inbound.messages(maxSize: 1 << 16).makeAsyncIterator()
                var nonce: [UInt8] = []
                try await outbound.write(.text(#"{"type":"open","version":1}"#))
                while let message = try await iterator.next() {
                    guard case .text(let text) = message,
                        let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                        let type = object["type"] as? String
                    else { continue }
                    switch (step, type) {
                    case (.awaitingChallenge, "challenge"):
                        guard let hex = object["nonce"] as? String, let bytes = Hex.decode(hex, count: 32) else {
                            throw LoadError.protocol
                        }
                        nonce = bytes
                        let signature = try device.sign(Proofs.helloMessage(nonce: nonce, device: device.publicKey))
                        try await outbound.write(
                            .text(
                                #"{"type":"hello","version":1,"device":"\#(device.publicKey.hex)","signature":"\#(Hex.encode(signature))"}"#
                            ))
                        step = .awaitingWelcome
                    case (.awaitingWelcome, "welcome"):
                        run.authenticated()
                        let phaseStart = await run.joinPhaseStart()
                        try await ContinuousClock().sleep(until: phaseStart + .seconds(joinDelay))
                        let signature = try swarm.sign(
                            Proofs.joinMessage(nonce: nonce, device: device.publicKey, swarm: swarm.publicKey))
                        let join =
                            #"{"type":"join","id":1,"swarm":"\#(swarm.publicKey.hex)","signature":"\#(Hex.encode(signature))","addresses":["127.0.0.1:\#(20000 + index % 40000)"]}"#
                        let sent = ContinuousClock.now
                        try await outbound.write(.text(join))
                        step = .awaitingJoined(sent)
                    case (.awaitingJoined(let sent), "joined"):
                        run.joined(latency: .now - sent)
                        step = .holding
                        await run.waitForHold()
                        return
                    case (_, "error"):
                        throw LoadError.refused(object["code"] as? String ?? "?")
                    default:
                        continue  // peer-joined and peer-left events
                    }
                }
                throw LoadError.closedEarly
            }
        } catch {
            run.logger.warning("peer failed", metadata: ["peer.index": "\(index)", "error": "\(error)"])
            run.failed()
        }
    }

    enum LoadError: Error { case `protocol`, closedEarly, refused(String) }
}
