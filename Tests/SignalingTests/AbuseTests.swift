import Foundation
import NIOCore
import NIOWebSocket
import Testing

@testable import SignalingClient
@testable import SignalingProtocol
@testable import SignalingServer

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite("Brute force, limits and garbage")
struct AbuseTests {
    @Test("twenty bad proofs from one address get it banned, and the ban survives a restart")
    func banSurvivesRestart() async throws {
        let directory = try temporaryDirectory()
        var configuration = makeServerConfiguration(dataDirectory: directory)
        configuration.delayThreshold = 5
        configuration.banThreshold = 20
        try await withServer(configuration) { _, url, _ in
            var codes: [[SignalErrorCode]] = []
            for _ in 0..<20 {
                let outcome = try await withTimeout("bad hello answered") {
                    try await rawSession(url: url) { _, outbound in try await outbound.send(badHello()) }
                }
                codes.append(outcome.errorCodes)
            }
            #expect(codes.prefix(19).allSatisfy { $0 == [.badProof] }, "\(codes)")
            #expect(codes.last == [.banned])
            // Even a correct hello from the banned address is refused now.
            let device = Ed25519Signer()
            let afterBan = try await withTimeout("banned connection") {
                try await rawSession(url: url) { challenge, outbound in
                    if let challenge { try await outbound.send(goodHello(challenge, device: device)) }
                }
            }
            #expect(afterBan.errorCodes == [.banned])
            #expect(afterBan.closeCode == .policyViolation)
        }
        // A new server over the same data directory remembers the ban.
        try await withServer(configuration) { server, url, port in
            let outcome = try await withTimeout("banned after restart") {
                try await rawSession(url: url) { _, _ in }
            }
            #expect(outcome.errorCodes == [.banned])
            let metrics = try await httpGet(port: port, path: "/metrics")
            #expect(metrics.contains("harp_signal_bans_active 1"))
            #expect(metrics.contains("harp_signal_banned_connections_total 1"))
            _ = server
        }
    }

    @Test("oversized, garbled and out-of-order messages close that connection; others are served")
    func badInputClosesOnlyThatConnection() async throws {
        var configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        configuration.maxFrameSize = 16 * 1024
        configuration.maxJSONBytes = 1024
        try await withServer(configuration) { _, url, port in
            try await withPeers(1, url: url) { peers in
                let swarm = Ed25519Signer()
                _ = try await withTimeout("honest join") { try await peers[0].client.join(swarm: swarm, addresses: []) }

                let garbage = try await withTimeout("garbage") {
                    try await rawSession(url: url) { _, outbound in try await outbound.write(.text("{not json")) }
                }
                #expect(garbage.errorCodes == [.badMessage])
                #expect(garbage.closeCode == .policyViolation)

                let unknownType = try await withTimeout("unknown type") {
                    try await rawSession(url: url) { _, outbound in
                        try await outbound.write(.text(#"{"type":"gimme"}"#))
                    }
                }
                #expect(unknownType.errorCodes == [.badMessage])

                let bigJSON = try await withTimeout("big json") {
                    try await rawSession(url: url) { _, outbound in
                        try await outbound.write(.text(String(repeating: " ", count: 2000) + "{}"))
                    }
                }
                #expect(bigJSON.errorCodes == [.tooLarge])
                #expect(bigJSON.closeCode == .messageTooLarge)

                let bigFrame = try await withTimeout("big frame") {
                    try await rawSession(url: url) { _, outbound in
                        try await outbound.write(.binary(ByteBuffer(repeating: 7, count: 100_000)))
                    }
                }
                #expect(bigFrame.closeCode == .messageTooLarge)

                let joinFirst = try await withTimeout("join before hello") {
                    try await rawSession(url: url) { _, outbound in
                        let join = Message.Join(id: 1, swarm: swarm.publicKey, signature: HexBytes([0]), addresses: [])
                        try await outbound.send(.join(join))
                    }
                }
                #expect(joinFirst.errorCodes == [.unexpected])

                let relayFirst = try await withTimeout("relay bytes before hello") {
                    try await rawSession(url: url) { _, outbound in
                        try await outbound.write(.binary(ByteBuffer(bytes: [0, 0, 0, 1, 42])))
                    }
                }
                #expect(relayFirst.errorCodes == [.unexpected])

                // The honest peer is still connected and served.
                let second = Ed25519Signer()
                let found = try await withTimeout("honest join after abuse") {
                    try await peers[0].client.join(swarm: second, addresses: [])
                }
                #expect(found.isEmpty)
                let health = try await httpGet(port: port, path: "/healthz")
                #expect(health == "ok\n")
                #expect(!peers[0].log.events.contains { if case .disconnected = $0 { true } else { false } })
            }
        }
    }

    @Test("a connection that never says hello times out")
    func unauthenticatedTimeout() async throws {
        var configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        configuration.helloTimeout = .milliseconds(200)
        try await withServer(configuration) { _, url, _ in
            let outcome = try await withTimeout("hello timeout", seconds: 10) {
                try await rawSession(url: url) { _, _ in }
            }
            #expect(outcome.errorCodes == [.timeout])
            #expect(outcome.closeCode == .policyViolation)
        }
    }

    @Test("a connection that floods messages is closed")
    func messageRateLimit() async throws {
        var configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        configuration.messagesPerSecond = 1
        configuration.messageBurst = 5
        try await withServer(configuration) { _, url, _ in
            let device = Ed25519Signer()
            let outcome = try await withTimeout("rate limit") {
                try await rawSession(url: url) { challenge, outbound in
                    guard let challenge else { return }
                    try await outbound.send(goodHello(challenge, device: device))
                    for _ in 0..<20 {
                        try await outbound.send(.leave(.init(swarm: device.publicKey)))
                    }
                }
            }
            #expect(outcome.errorCodes == [.rateLimited])
        }
    }
}

/// A plain HTTP/1.1 GET on 127.0.0.1, returning the body.
func httpGet(port: Int, path: String) async throws -> String {
    let url = try #require(URL(string: "http://127.0.0.1:\(port)\(path)"))
    let (data, response) = try await URLSession.shared.data(from: url)
    #expect((response as? HTTPURLResponse)?.statusCode == 200)
    return String(decoding: data, as: UTF8.self)
}
