import Testing

@testable import SignalingClient
@testable import SignalingProtocol
@testable import SignalingServer

@Suite("Restart and TLS")
struct RestartTests {
    @Test("a server restarted while two clients are joined sees them rejoin")
    func clientsRejoinAfterRestart() async throws {
        let directory = try temporaryDirectory()
        let first = try SignalServer(
            configuration: makeServerConfiguration(dataDirectory: directory), logger: makeTestLogger("test.server.1"))
        let stopFirst = OneShot<Void>()
        let secondServer = OneShot<SignalServer>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            // One child runs the first server until told to stop, then a second one on the same port and data.
            group.addTask {
                try await withThrowingTaskGroup(of: Void.self) { inner in
                    inner.addTask { try await first.run() }
                    try await stopFirst.value()
                    inner.cancelAll()
                }
                var configuration = makeServerConfiguration(dataDirectory: directory)
                configuration.port = try await first.waitUntilListening()
                let second = try SignalServer(configuration: configuration, logger: makeTestLogger("test.server.2"))
                secondServer.fulfil(second)
                try await second.run()
            }
            let port = try await first.waitUntilListening()
            let url = "ws://127.0.0.1:\(port)\(Signaling.webSocketPath)"
            try await withPeers(2, url: url) { peers in
                let swarm = Ed25519Signer()
                _ = try await withTimeout("a joins") {
                    try await peers[0].client.join(swarm: swarm, addresses: ["127.0.0.1:1"])
                }
                _ = try await withTimeout("b joins") {
                    try await peers[1].client.join(swarm: swarm, addresses: ["127.0.0.1:2"])
                }
                stopFirst.fulfil(())
                for peer in peers {
                    try await peer.log.wait("disconnect noticed") { if case .disconnected = $0 { true } else { false } }
                }
                let second = try await withTimeout("second server") { try await secondServer.value() }
                #expect(try await second.waitUntilListening() == port)
                for peer in peers {
                    try await peer.log.wait(count: 2, "rejoined") { $0.joined(swarm.publicKey) != nil }
                }
                // After the rejoin each knows the other again, from the candidate list or a peer-joined event.
                let (a, b) = (peers[0].device.publicKey, peers[1].device.publicKey)
                try await peers[0].log.wait(count: 2, "a knows b") { event in
                    event.peerJoined(swarm.publicKey, b)
                        || (event.joined(swarm.publicKey)?.contains { $0.device == b } ?? false)
                }
                try await peers[1].log.wait(count: 2, "b knows a") { event in
                    event.peerJoined(swarm.publicKey, a)
                        || (event.joined(swarm.publicKey)?.contains { $0.device == a } ?? false)
                }
            }
            group.cancelAll()
        }
    }

    @Test("a self-signed certificate is pinned by its fingerprint")
    func pinnedSelfSignedTLS() async throws {
        var configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        configuration.tls = .selfSigned
        try await withServer(configuration) { server, url, port in
            let fingerprint = try #require(server.certificateFingerprint)
            #expect(url.hasPrefix("wss://"))
            try await withPeers(1, url: url, configure: { $0.pinnedCertificateSHA256 = fingerprint }) { peers in
                let swarm = Ed25519Signer()
                let found = try await withTimeout("join over TLS") {
                    try await peers[0].client.join(swarm: swarm, addresses: [])
                }
                #expect(found.isEmpty)
            }
            let wrong = String(repeating: "ab", count: 32)
            await #expect(throws: SignalClientError.pinMismatch) {
                _ = try await CertificatePinning.tlsConfiguration(host: "127.0.0.1", port: port, fingerprint: wrong)
            }
        }
        // The certificate is kept: a restart presents the same fingerprint.
        let again = try SignalServer(configuration: configuration, logger: makeTestLogger("test.server.2"))
        let before = try SignalServer(configuration: configuration, logger: makeTestLogger("test.server.3"))
        #expect(again.certificateFingerprint == before.certificateFingerprint)
    }
}
