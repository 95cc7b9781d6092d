import Foundation
import Testing

@testable import SignalingClient
@testable import SignalingProtocol
@testable import SignalingServer

/// A client in many swarms (a seeder of thousands of files) stays under the server's message rate.
@Suite("Client message pacing")
struct PacingTests {
    /// 200 joins at once against a server with its default limits (20 messages a second, burst 60): all are answered
    /// and the server closes nothing. Sent as fast as they came, they broke the limit, the server closed the connection,
    /// and every reconnect rejoined all of them at once again.
    @Test func manyJoinsStayUnderTheServersRate() async throws {
        var configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        // The server's own defaults (the tests' configuration raises them).
        configuration.messagesPerSecond = SignalServerConfiguration.defaultMessagesPerSecond
        configuration.messageBurst = SignalServerConfiguration.defaultMessageBurst
        try await withServer(configuration) { server, url, _ in
            try await withPeers(1, url: url) { peers in
                let client = peers[0].client
                let answered = try await withTimeout("200 joins", seconds: 60) {
                    try await withThrowingTaskGroup(of: Int.self) { group in
                        for _ in 0..<200 {
                            group.addTask {
                                _ = try await client.join(swarm: Ed25519Signer(), addresses: []); return 1
                            }
                        }
                        return try await group.reduce(0, +)
                    }
                }
                #expect(answered == 200)
                #expect(await server.context.hub.stats().swarms == 200)
            }
        }
    }

    /// Turns: a burst at once, then one per interval, in call order.
    @Test func theTurnsFollowTheRateAfterTheBurst() {
        var pacer = MessagePacer(rate: 10, burst: 3)
        let now = ContinuousClock.now
        let turns = (0..<6).map { _ in pacer.reserve(at: now) }
        #expect(turns[0...2].allSatisfy { $0 == now })
        #expect(turns[3] > now)
        for index in 3..<6 {
            #expect(turns[index] - turns[index - 1] <= .milliseconds(100))
            #expect(turns[index] >= turns[index - 1])
        }
        #expect(turns[5] - now >= .milliseconds(250))
        // After idling, the bucket is full again.
        #expect(pacer.reserve(at: now + .seconds(10)) == now + .seconds(10))
    }
}
