import Foundation
import Testing

@testable import SignalingClient
@testable import SignalingProtocol
@testable import SignalingServer

@Suite("Metrics")
struct MetricsTests {
    /// Every name that docs/operations-signaling.md, bench/signal and the end-to-end tests read.
    static let documentedNames = [
        "harp_signal_tcp_connections", "harp_signal_client_addresses", "harp_signal_refused_connections_total",
        "harp_signal_request_timeouts_total", "harp_signal_connections", "harp_signal_peers_connected",
        "harp_signal_swarms", "harp_signal_swarm_memberships", "harp_signal_joins_total",
        "harp_signal_refused_proofs_total", "harp_signal_refused_join_keys_total",
        "harp_signal_refused_swarm_proofs_total", "harp_signal_bans_total", "harp_signal_bans_active",
        "harp_signal_banned_connections_total", "harp_signal_closed_for_abuse_total",
        "harp_signal_relay_streams_total", "harp_signal_relay_streams_open", "harp_signal_relayed_bytes_total",
        "harp_signal_punch_attempts_total", "harp_signal_punch_successes_total",
    ]

    @Test("/metrics serves every documented name once, with its type and help")
    func everyDocumentedName() async throws {
        let configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        try await withServer(configuration) { _, _, port in
            let text = try await httpGet(port: port, path: "/metrics")
            let lines = text.split(separator: "\n")
            for name in Self.documentedNames {
                #expect(lines.count(where: { $0.hasPrefix(name + " ") }) == 1, "sample \(name)")
                #expect(lines.contains { $0.hasPrefix("# TYPE \(name) ") }, "type of \(name)")
                #expect(lines.contains { $0.hasPrefix("# HELP \(name) ") }, "help of \(name)")
            }
            #expect(lines.contains("# TYPE harp_signal_join_seconds histogram"))
        }
    }

    @Test("the join histogram counts a join, on the server that answered it only")
    func joinHistogram() async throws {
        let quiet = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        let busy = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        try await withServer(quiet) { _, _, quietPort in
            try await withServer(busy) { _, url, port in
                try await withPeers(1, url: url) { peers in
                    _ = try await withTimeout("join") {
                        try await peers[0].client.join(swarm: Ed25519Signer(), addresses: ["127.0.0.1:40001"])
                    }
                }
                let text = try await httpGet(port: port, path: "/metrics")
                #expect(sample(text, "harp_signal_join_seconds_count") == 1)
                #expect(sample(text, "harp_signal_joins_total") == 1)
                let sum = try #require(sample(text, "harp_signal_join_seconds_sum"))
                #expect(sum > 0 && sum < 60)
                // Cumulative buckets: the +Inf bucket holds the join, and ms-level bounds are there to hold it too.
                #expect(sample(text, #"harp_signal_join_seconds_bucket{le="+Inf"}"#) == 1)
                #expect(sample(text, #"harp_signal_join_seconds_bucket{le="0.001"}"#) != nil)
                #expect(sample(text, #"harp_signal_join_seconds_bucket{le="0.00025"}"#) != nil)

                // Two servers in one process: the other one counted nothing.
                let other = try await httpGet(port: quietPort, path: "/metrics")
                #expect(sample(other, "harp_signal_join_seconds_count") == 0)
                #expect(sample(other, "harp_signal_joins_total") == 0)
            }
        }
    }

    /// The value of the sample line `name value` in exposition `text`.
    private func sample(_ text: String, _ name: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1))
        }
        return nil
    }
}
