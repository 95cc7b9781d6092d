import Foundation
import SignalingProtocol
import Synchronization

/// One attack on a signaling server, with a legitimate client's view of it: `/healthz` and a whole join (connect,
/// prove, join) from 127.0.0.9, before, during and after, and the server's RSS at each point. Attackers come from
/// other loopback addresses (127.0.0.2 and up), so per-address limits see them as other hosts. Bounded: a fixed number
/// of connections, a fixed hold, and a deadline on every wait.
struct AttackRun {
    enum Kind: String, CaseIterable {
        /// Idle TCP connections, half of them with a half-sent HTTP request, from `addresses` addresses.
        case idle
        /// Devices from one address that each join many self-made swarms.
        case swarms
        /// Connections opened before a ban, each then sending a wrong join-key proof.
        case proofs
        /// Two devices relaying to each other as fast as they can, plus a flood of empty relay frames.
        case relay
    }

    let kind: Kind
    let port: Int
    let serverPID: Int32?
    let count: Int
    let addresses: Int
    let perDevice: Int
    let holdSeconds: Double
    let joinKey: [UInt8]?
    static let legitimate = "127.0.0.9"

    struct Probe {
        var healthz: [Double] = []
        var joins: [Double] = []
        var failures = 0
    }

    /// Ten `/healthz` requests and ten whole joins, one after another.
    func probe() -> Probe {
        var probe = Probe()
        for _ in 0..<10 {
            if let (seconds, ok) = try? RawSocket.get("/healthz", port: port, from: Self.legitimate), ok {
                probe.healthz.append(seconds)
            } else {
                probe.failures += 1
            }
            if let seconds = try? RawWebSocket.timedJoin(port: port, from: Self.legitimate, joinKey: joinKey) {
                probe.joins.append(seconds)
            } else {
                probe.failures += 1
            }
        }
        return probe
    }

    func rssMiB() -> Double {
        Double(serverPID.flatMap(ProcStats.read)?.rssKiB ?? 0) / 1024
    }

    /// A counter or gauge from `/metrics`.
    func metric(_ name: String) -> Double? {
        guard let descriptor = try? RawSocket.connect(port: port, from: Self.legitimate) else { return nil }
        defer { close(descriptor) }
        try? RawSocket.send(descriptor, Array("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        var text: [UInt8] = []
        while let chunk = try? RawSocket.receive(descriptor), !chunk.isEmpty { text += chunk }
        for line in String(decoding: text, as: UTF8.self).split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    func execute() -> [String: Any] {
        var report: [String: Any] = ["attack": kind.rawValue, "count": count, "addresses": addresses]
        let before = probe()
        report.merge(Self.summary(before, "before"), uniquingKeysWith: { $1 })
        report["rss_before_mib"] = rssMiB()
        let attack = Attack(run: self)
        attack.start()
        attack.waitUntilEstablished(deadline: .now + .seconds(120))
        report["attack_established_s"] = attack.establishedAfter
        let during = probe()
        report.merge(Self.summary(during, "during"), uniquingKeysWith: { $1 })
        report["rss_during_mib"] = rssMiB()
        report.merge(attack.outcome(), uniquingKeysWith: { $1 })
        attack.stop()
        // After: the server's sockets and memberships back to where they were, then its RSS.
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let sockets = metric("harp_signal_tcp_connections") ?? .infinity
            let members = metric("harp_signal_swarm_memberships") ?? .infinity
            if sockets <= 1, members == 0 { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        report["memberships_after"] = metric("harp_signal_swarm_memberships") ?? -1
        report["tcp_connections_after"] = metric("harp_signal_tcp_connections") ?? -1
        report["rss_after_mib"] = rssMiB()
        let after = probe()
        report.merge(Self.summary(after, "after"), uniquingKeysWith: { $1 })
        for name in [
            "harp_signal_refused_connections_total", "harp_signal_request_timeouts_total",
            "harp_signal_refused_join_keys_total", "harp_signal_bans_total", "harp_signal_relayed_bytes_total",
        ] {
            report[name] = metric(name) ?? -1
        }
        return report
    }

    static func summary(_ probe: Probe, _ phase: String) -> [String: Any] {
        func median(_ values: [Double]) -> Double {
            guard !values.isEmpty else { return -1 }
            let sorted = values.sorted()
            return sorted[sorted.count / 2] * 1000
        }
        return [
            "healthz_\(phase)_p50_ms": median(probe.healthz),
            "healthz_\(phase)_max_ms": (probe.healthz.max() ?? -1) * 1000,
            "join_\(phase)_p50_ms": median(probe.joins), "join_\(phase)_max_ms": (probe.joins.max() ?? -1) * 1000,
            "probe_\(phase)_failures": probe.failures,
        ]
    }

    static func json(_ report: [String: Any]) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]) else {
            return "{}"
        }
        return String(decoding: data, as: UTF8.self)
    }
}
