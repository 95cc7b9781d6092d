import Foundation
import NIOCore
import Testing

@testable import SignalingClient
@testable import SignalingProtocol
@testable import SignalingServer

/// Issue 13 part 4: idle and half-sent connections, and floods of them from one address or many.
@Suite("Connection floods")
struct ConnectionFloodTests {
    @Test("a connection that sends nothing, or half an HTTP request, is closed after the request timeout")
    func idleAndHalfSentConnectionsClose() async throws {
        var configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        configuration.requestTimeout = .milliseconds(300)
        try await withServer(configuration) { server, url, port in
            try await withPeers(1, url: url) { peers in
                try await peers[0].log.wait("connected") { $0.connected }
                let idle = try await TCPProbe.connect(port: port, from: "127.0.0.1")
                // Half a request, written the moment the connection is up: under load a separate send could
                // come after the server already closed the connection for sending nothing.
                let halfSent = try await TCPProbe.connect(
                    port: port, from: "127.0.0.1",
                    sending: "GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
                #expect(try await idle.waitForClose("idle connection closed") == "")
                #expect(try await halfSent.waitForClose("half-sent request closed") == "")
                #expect(server.context.metrics.value("harp_signal_request_timeouts_total") == 2)
                // The peer upgraded before the timeout and is not subject to it: it still joins.
                let found = try await withTimeout("join after the timeouts") {
                    try await peers[0].client.join(swarm: Ed25519Signer(), addresses: [])
                }
                #expect(found.isEmpty)
                #expect(!peers[0].log.events.contains { if case .disconnected = $0 { true } else { false } })
                // A plain HTTP request is answered.
                #expect(try await TCPProbe.get("/healthz", port: port, from: "127.0.0.1").hasSuffix("ok\n"))
            }
        }
    }

    @Test("connections over the per-address cap are closed at once; other addresses are served; slots come back")
    func perAddressCap() async throws {
        var configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        configuration.maxConnectionsPerAddress = 3
        try await withServer(configuration) { server, _, port in
            var held: [TCPProbe] = []
            for _ in 0..<3 { held.append(try await TCPProbe.connect(port: port, from: "127.0.0.2")) }
            try await waitFor("three connections counted") { server.limiter.counts.total == 3 }
            #expect(try await TCPProbe.get("/healthz", port: port, from: "127.0.0.2") == "")
            #expect(try await TCPProbe.get("/healthz", port: port, from: "127.0.0.1").hasSuffix("ok\n"))
            #expect(server.context.metrics.value("harp_signal_refused_connections_total") == 1)
            for probe in held { await probe.close() }
            try await waitFor("slots given back") {
                server.limiter.counts.total == 0 && server.limiter.counts.addresses == 0
            }
            #expect(try await TCPProbe.get("/healthz", port: port, from: "127.0.0.2").hasSuffix("ok\n"))
        }
    }

    @Test("connections over the total cap are closed at once")
    func totalCap() async throws {
        var configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        configuration.maxConnections = 4
        try await withServer(configuration) { server, _, port in
            var held: [TCPProbe] = []
            for source in ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"] {
                held.append(try await TCPProbe.connect(port: port, from: source))
            }
            try await waitFor("four connections counted") { server.limiter.counts.total == 4 }
            #expect(try await TCPProbe.get("/healthz", port: port, from: "127.0.0.6") == "")
            await held[0].close()
            try await waitFor("a slot given back") { server.limiter.counts.total == 3 }
            #expect(try await TCPProbe.get("/healthz", port: port, from: "127.0.0.6").hasSuffix("ok\n"))
            for probe in held { await probe.close() }
        }
    }

    @Test("the connection cap is kept under the open-file limit")
    func capUnderFileLimit() {
        var limit = rlimit()
        #expect(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0)
        let cap = SignalServer.connectionCap(Int.max)
        if limit.rlim_cur != rlim_t.max { #expect(cap < Int(clamping: limit.rlim_cur)) }
        #expect(SignalServer.connectionCap(10) == 10)
    }

    @Test(
        "client address keys: IPv4 as written, IPv6 by /64, IPv4-mapped as IPv4",
        arguments: [
            ("203.0.113.9", "203.0.113.9"),
            ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
            ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
            ("::ffff:198.51.100.7", "198.51.100.7"),
            ("::1", "0:0:0:0::/64"),
        ])
    func clientAddressKeys(text: String, key: String) {
        #expect(ClientAddress.key(text: text) == key)
    }

    @Test("X-Forwarded-For: the right-most entry that is not a trusted proxy; garbage names no one")
    func forwardedClient() {
        let trusted: Set = ["10.0.0.1", "10.0.0.2"]
        #expect(ConnectionGuardHandler.forwardedClient(["203.0.113.9"], trusted: trusted) == "203.0.113.9")
        #expect(
            ConnectionGuardHandler.forwardedClient(["1.2.3.4, 203.0.113.9, 10.0.0.2"], trusted: trusted)
                == "203.0.113.9")
        #expect(ConnectionGuardHandler.forwardedClient(["1.2.3.4", "203.0.113.9"], trusted: trusted) == "203.0.113.9")
        #expect(ConnectionGuardHandler.forwardedClient(["not-an-ip"], trusted: trusted) == nil)
        #expect(ConnectionGuardHandler.forwardedClient([], trusted: trusted) == nil)
        #expect(ConnectionGuardHandler.forwardedClient(["10.0.0.1"], trusted: trusted) == nil)
    }
}

/// Polls `condition` every 10 ms until it holds, failing after `seconds` (a deadline, not a sleep for a peer).
func waitFor(_ what: String, seconds: Double = 15, _ condition: @escaping @Sendable () async -> Bool) async throws {
    try await withTimeout(what, seconds: seconds) {
        while await !condition() { try await Task.sleep(for: .milliseconds(10)) }
    }
}
