import Crypto
import NIOCore
import Synchronization
import Testing

@testable import SignalingClient
@testable import SignalingProtocol
@testable import SignalingServer

@Suite("Relay")
struct RelayTests {
    /// Stands in for the Noise session SwarmKit runs end to end: both peers hold a key the server never sees.
    struct Sealer {
        let key: SymmetricKey
        func seal(_ text: String) throws -> [UInt8] {
            Array(try ChaChaPoly.seal(Array(text.utf8), using: key).combined)
        }
        func open(_ bytes: ByteBuffer) throws -> String {
            let box = try ChaChaPoly.SealedBox(combined: Array(bytes.readableBytesView))
            return String(decoding: try ChaChaPoly.open(box, using: key), as: UTF8.self)
        }
    }

    @Test("a relay stream carries bytes both ways; the server relays only ciphertext")
    func relayCarriesCiphertext() async throws {
        let recorded = Mutex<[UInt8]>([])
        var configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        configuration.relayObserver = { _, payload in recorded.withLock { $0 += Array(payload.readableBytesView) } }
        let marker = "PLAINTEXT-MARKER-7c1f"
        let sealer = Sealer(key: SymmetricKey(size: .bits256))
        try await withServer(configuration) { _, url, port in
            try await withPeers(2, url: url) { peers in
                let swarm = Ed25519Signer()
                let (a, b) = (peers[0], peers[1])
                _ = try await withTimeout("a joins") { try await a.client.join(swarm: swarm, addresses: []) }
                _ = try await withTimeout("b joins") { try await b.client.join(swarm: swarm, addresses: []) }

                let outgoing = try await withTimeout("open relay") {
                    try await a.client.openRelay(swarm: swarm.publicKey, to: b.device.publicKey)
                }
                try await b.log.wait("relay incoming") { $0.relay != nil }
                let incoming = try #require(b.log.events.compactMap(\.relay).first)
                #expect(incoming.id == outgoing.id)
                #expect(incoming.peer == a.device.publicKey)

                try await outgoing.write(sealer.seal("hello \(marker) from a"))
                let atB = try await withTimeout("b reads") { await incoming.first { _ in true } }
                #expect(try sealer.open(try #require(atB)) == "hello \(marker) from a")

                try await incoming.write(sealer.seal("reply \(marker) from b"))
                let atA = try await withTimeout("a reads") { await outgoing.first { _ in true } }
                #expect(try sealer.open(try #require(atA)) == "reply \(marker) from b")

                let relayed = recorded.withLock { $0 }
                #expect(relayed.count > 2 * marker.utf8.count)
                #expect(!Self.contains(relayed, Array(marker.utf8)))

                // The hook does see plaintext when peers send it, so the check above is not vacuous.
                try await outgoing.write(Array("unsealed \(marker)".utf8))
                _ = try await withTimeout("b reads plaintext") { await incoming.first { _ in true } }
                #expect(Self.contains(recorded.withLock { $0 }, Array(marker.utf8)))

                let metrics = try await httpGet(port: port, path: "/metrics")
                #expect(metrics.contains("harp_signal_relay_streams_open 1"))

                // Closing one end ends the other's iteration.
                await outgoing.close()
                let end = try await withTimeout("b sees the end") { await incoming.first { _ in true } }
                #expect(end == nil)
            }
        }
    }

    @Test("a relay to a peer outside the swarm is refused")
    func relayNeedsCommonSwarm() async throws {
        let configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        try await withServer(configuration) { _, url, _ in
            try await withPeers(2, url: url) { peers in
                let (a, b) = (peers[0], peers[1])
                let swarm = Ed25519Signer()
                let other = Ed25519Signer()
                _ = try await withTimeout("a joins") { try await a.client.join(swarm: swarm, addresses: []) }
                _ = try await withTimeout("b joins other") { try await b.client.join(swarm: other, addresses: []) }
                let result: SignalClientError? = try await withTimeout("refusal") {
                    do {
                        _ = try await a.client.openRelay(swarm: swarm.publicKey, to: b.device.publicKey)
                        return nil
                    } catch let error as SignalClientError {
                        return error
                    }
                }
                #expect(result == .refused(.noSuchPeer))
                let notMember: SignalClientError? = try await withTimeout("refusal") {
                    do {
                        _ = try await a.client.openRelay(swarm: other.publicKey, to: b.device.publicKey)
                        return nil
                    } catch let error as SignalClientError {
                        return error
                    }
                }
                #expect(notMember == .refused(.notJoined))
            }
        }
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= haystack.count else { return false }
        for start in 0...(haystack.count - needle.count)
        where haystack[start..<start + needle.count].elementsEqual(needle) {
            return true
        }
        return false
    }
}
