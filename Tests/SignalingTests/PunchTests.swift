import Foundation
import Testing

@testable import SignalingClient
@testable import SignalingProtocol
@testable import SignalingServer

/// Hole punching as the signaling server coordinates it (docs/nat.md).
@Suite("Hole punch coordination")
struct PunchTests {
    @Test("the end nearer the server waits for the other; both wait the margin; no delay exceeds the cap")
    func delays() {
        let (a, b) = Hub.punchDelays(.milliseconds(100), .milliseconds(20))
        #expect(a == Hub.punchMargin)
        #expect(b == .milliseconds(40) + Hub.punchMargin)
        let (c, d) = Hub.punchDelays(nil, nil)
        #expect(c == Hub.punchMargin && d == Hub.punchMargin)
        let (e, f) = Hub.punchDelays(.seconds(60), .zero)
        #expect(e == Hub.punchMargin)
        #expect(f == Hub.maxPunchDelay)
    }

    @Test("a punch request sends punch to both ends with the other's addresses; a repeat within the interval is not")
    func bothEndsAreTold() async throws {
        let configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        try await withServer(configuration) { _, url, port in
            try await withTwoMembers(url: url, bReflexivePort: 41001) { swarm, a, b, _ in
                await a.client.requestPunch(swarm: swarm.publicKey, peer: b.device.publicKey)
                // The pair asks again at once from the other end (well within the interval even on a loaded machine):
                // whichever of the two the server takes first is the attempt, the other is refused and nobody is
                // told twice.
                await b.client.requestPunch(swarm: swarm.publicKey, peer: a.device.publicKey)
                try await a.log.wait("a is told to punch") { $0.punch?.peer.device == b.device.publicKey }
                try await b.log.wait("b is told to punch") { $0.punch?.peer.device == a.device.publicKey }
                let toB = try #require(b.log.events.compactMap(\.punch).first)
                let toA = try #require(a.log.events.compactMap(\.punch).first)
                #expect(toB.peer.addresses == ["10.9.9.1:41000", "reflexive@127.0.0.1:41000"])
                #expect(toA.peer.addresses == ["10.9.9.2:41001", "reflexive@127.0.0.1:41001"])
                #expect(toA.id == toB.id)
                #expect(toA.delay <= .seconds(5) && toB.delay <= .seconds(5))

                // Both report; only the requester's report counts.
                await a.client.reportPunch(id: toA.id, connected: true)
                await b.client.reportPunch(id: toA.id, connected: true)
                let text = try await withTimeout("metrics") {
                    var text = ""
                    while metric(text, "harp_signal_punch_successes_total") != 1 {
                        try await Task.sleep(for: .milliseconds(20))
                        text = try await httpGet(port: port, path: "/metrics")
                    }
                    return text
                }
                #expect(metric(text, "harp_signal_punch_attempts_total") == 1)
                #expect(a.log.events.compactMap(\.punch).count == 1)
                #expect(b.log.events.compactMap(\.punch).count == 1)
            }
        }
    }

    @Test("a punch with a device that is not a member of the swarm is refused")
    func strangerIsRefused() async throws {
        let configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        try await withServer(configuration) { _, url, port in
            try await withPeers(2, url: url) { peers in
                let swarm = Ed25519Signer()
                _ = try await withTimeout("a joins") {
                    try await peers[0].client.join(swarm: swarm, addresses: ["10.9.9.1:41000"])
                }
                await peers[0].client.requestPunch(swarm: swarm.publicKey, peer: peers[1].device.publicKey)
                // A later request that is granted shows the refused one was handled first (messages are in order).
                _ = try await withTimeout("b joins") {
                    try await peers[1].client.join(swarm: swarm, addresses: ["10.9.9.2:41001"])
                }
                await peers[1].client.requestPunch(swarm: swarm.publicKey, peer: peers[0].device.publicKey)
                try await peers[0].log.wait("the granted punch") { $0.punch != nil }
                let text = try await httpGet(port: port, path: "/metrics")
                #expect(metric(text, "harp_signal_punch_attempts_total") == 1)
            }
        }
    }
}

/// A sample's value in Prometheus text, `nil` when absent.
private func metric(_ text: String, _ name: String) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
        return Double(line.dropFirst(name.count + 1))
    }
    return nil
}

extension SignalClient.Event {
    var punch: (peer: PeerInfo, delay: Duration, id: UInt32, spray: SignalClient.SprayPart?)? {
        if case .punch(_, let peer, let delay, let id, let spray) = self { return (peer, delay, id, spray) }
        return nil
    }
}
