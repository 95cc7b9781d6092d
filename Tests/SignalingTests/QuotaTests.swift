import Foundation
import NIOCore
import Synchronization
import Testing

@testable import SignalingClient
@testable import SignalingProtocol
@testable import SignalingServer

/// Issue 13 part 4: what one client address may hold (memberships, announced bytes) and send (relay frames, relay
/// bytes), and that all of it is given back when its devices leave.
@Suite("Per-address quotas")
struct QuotaTests {
    @Test("memberships over the address's quota are refused, across devices; leaving gives them back")
    func membershipQuota() async throws {
        var configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        configuration.maxMembershipsPerAddress = 3
        try await withServer(configuration) { server, url, _ in
            let hub = server.context.hub
            try await withPeers(1, url: url) { stayer in
                try await withPeers(2, url: url) { peers in
                    for peer in peers {
                        _ = try await withTimeout("join") {
                            try await peer.client.join(swarm: Ed25519Signer(), addresses: [])
                        }
                    }
                    _ = try await withTimeout("third join") {
                        try await stayer[0].client.join(swarm: Ed25519Signer(), addresses: [])
                    }
                    await #expect(throws: SignalClientError.refused(.tooManySwarms)) {
                        try await withTimeout("join over quota") {
                            try await stayer[0].client.join(swarm: Ed25519Signer(), addresses: [])
                        }
                    }
                    #expect(await hub.usage(of: "127.0.0.1")?.memberships == 3)
                }
                // The two devices left: their memberships are free again.
                try await waitFor("memberships given back") { await hub.usage(of: "127.0.0.1")?.memberships == 1 }
                _ = try await withTimeout("join after the others left") {
                    try await stayer[0].client.join(swarm: Ed25519Signer(), addresses: [])
                }
            }
            try await waitFor("nothing left of the address") { await hub.usage(of: "127.0.0.1") == nil }
            #expect(await hub.stats().swarms == 0)
        }
    }

    @Test("announced address bytes over the address's quota are refused; a re-announcement replaces its bytes")
    func announcedBytesQuota() async throws {
        var configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        configuration.maxAnnouncedBytesPerAddress = 40
        try await withServer(configuration) { server, url, _ in
            try await withPeers(1, url: url) { peers in
                let client = peers[0].client
                let address = "127.0.0.1:10000"  // 15 bytes
                let first = Ed25519Signer()
                _ = try await withTimeout("join 1") { try await client.join(swarm: first, addresses: [address]) }
                _ = try await withTimeout("join 2") {
                    try await client.join(swarm: Ed25519Signer(), addresses: [address])
                }
                await #expect(throws: SignalClientError.refused(.badAddresses)) {
                    try await withTimeout("join 3") {
                        try await client.join(swarm: Ed25519Signer(), addresses: [address])
                    }
                }
                _ = try await withTimeout("re-announce") {
                    try await client.join(swarm: first, addresses: ["1.2.3.4:5"])
                }
                #expect(await server.context.hub.usage(of: "127.0.0.1")?.announcedBytes == 24)
            }
        }
    }

    @Test("every relay frame counts: frames with no payload are paced by the frame rate and not forwarded")
    func emptyRelayFramesAreCounted() async throws {
        let forwarded = Mutex(0)
        var configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        configuration.relayFramesPerSecond = 20
        configuration.relayFrameBurst = 5
        configuration.relayObserver = { _, _ in forwarded.withLock { $0 += 1 } }
        try await withServer(configuration) { _, url, _ in
            try await withPeers(1, url: url) { peers in
                let target = peers[0]
                let swarm = Ed25519Signer()
                _ = try await withTimeout("target joins") { try await target.client.join(swarm: swarm, addresses: []) }
                let (sender, stream) = try await Self.rawRelay(url: url, swarm: swarm, to: target.device.publicKey)
                try await target.log.wait("relay incoming") { $0.relay != nil }
                let incoming = try #require(target.log.events.compactMap(\.relay).first)

                let start = ContinuousClock.now
                let header = withUnsafeBytes(of: stream.bigEndian) { Array($0) }
                for _ in 0..<25 { sender.sendBinary(header) }
                sender.sendBinary(header + [42])
                let payload = try await withTimeout("the last frame arrives") { await incoming.first { _ in true } }
                let elapsed = ContinuousClock.now - start
                #expect(payload.map { Array($0.readableBytesView) } == [42])
                #expect(forwarded.withLock { $0 } == 1)
                // 26 frames at 20 per second after a burst of 5 take at least (26 - 5) / 20 s.
                #expect(elapsed >= .milliseconds(900), "\(elapsed)")
                await sender.close()
            }
        }
    }

    @Test("relay bytes of one address are paced by the address's budget")
    func addressRelayBudget() async throws {
        var configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        configuration.maxFrameSize = 16 * 1024
        configuration.relayBytesPerSecondPerAddress = 64 * 1024
        try await withServer(configuration) { _, url, _ in
            try await withPeers(1, url: url) { peers in
                let target = peers[0]
                let swarm = Ed25519Signer()
                _ = try await withTimeout("target joins") { try await target.client.join(swarm: swarm, addresses: []) }
                let (sender, stream) = try await Self.rawRelay(url: url, swarm: swarm, to: target.device.publicKey)
                try await target.log.wait("relay incoming") { $0.relay != nil }
                let incoming = try #require(target.log.events.compactMap(\.relay).first)
                let header = withUnsafeBytes(of: stream.bigEndian) { Array($0) }
                let start = ContinuousClock.now
                // 10 frames of 16,000 bytes against a 64 KiB/s budget with a 64 KiB burst: at least 1.5 s.
                for _ in 0..<10 { sender.sendBinary(header + [UInt8](repeating: 7, count: 16_000)) }
                try await withTimeout("all relayed bytes arrive") {
                    var received = 0
                    for await buffer in incoming {
                        received += buffer.readableBytes
                        if received >= 10 * 16_000 { break }
                    }
                }
                let elapsed = ContinuousClock.now - start
                #expect(elapsed >= .milliseconds(1400), "\(elapsed)")
                await sender.close()
            }
        }
    }

    /// A raw connection that authenticates, joins `swarm` and opens a relay stream to `peer`.
    static func rawRelay(url: String, swarm: Ed25519Signer, to peer: DeviceID) async throws -> (RawConnection, UInt32) {
        let device = Ed25519Signer()
        let connection = RawConnection(url: url)
        let challenge = try await connection.challenge()
        connection.send(try goodHello(challenge, device: device))
        guard case .welcome? = try await connection.nextMessage("welcome") else { throw TimedOut(what: "welcome") }
        let signature = try swarm.sign(
            Proofs.joinMessage(nonce: challenge.nonce.bytes, device: device.publicKey, swarm: swarm.publicKey))
        connection.send(.join(.init(id: 1, swarm: swarm.publicKey, signature: HexBytes(signature), addresses: [])))
        guard case .joined? = try await connection.nextMessage("joined") else { throw TimedOut(what: "joined") }
        connection.send(.relayOpen(.init(id: 2, swarm: swarm.publicKey, peer: peer)))
        while let message = try await connection.nextMessage("relay-opened") {
            if case .relayOpened(let opened) = message { return (connection, opened.stream) }
        }
        throw TimedOut(what: "relay-opened")
    }
}
