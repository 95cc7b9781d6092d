import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import SignalingProtocol
import Synchronization

/// One load run: phases (connect all, join all, hold) with the measurements taken between them.
final class LoadRun: Sendable {
    private struct State {
        var authenticated = 0
        var joined = 0
        var failures = 0
        var latencies: [Double] = []
        var authWaiter: CheckedContinuation<Void, Never>?
        var joinWaiter: CheckedContinuation<Void, Never>?
        var joinStart: ContinuousClock.Instant?
        var connectedStats: ProcStats?
        var joinedStats: ProcStats?
        var joinPhaseSeconds = 0.0
        var peakRSSKiB = 0
    }

    let peers: Int
    let logger: Logger
    private let state = Mutex(State())
    private let joinGate = Gate()
    private let holdGate = Gate()

    init(peers: Int, logger: Logger) {
        self.peers = peers
        self.logger = logger
    }

    func execute(
        url: String, swarmKeys: [Ed25519Signer], connectRate: Double, joinRate: Double, serverPID: Int32?
    )
        async throws
    {
        let start = ContinuousClock.now
        try await withThrowingDiscardingTaskGroup { group in
            for index in 0..<peers {
                try await ContinuousClock().sleep(until: start + .seconds(Double(index) / connectRate))
                let swarm = swarmKeys[index % swarmKeys.count]
                let joinAt = Double(index) / joinRate
                group.addTask {
                    let peer = LoadPeer(index: index, swarm: swarm, joinDelay: joinAt, run: self)
                    await peer.run(url: url)
                }
            }
            await waitUntil(\.authWaiter) { $0.authenticated + $0.failures >= self.peers }
            let connected = serverPID.flatMap(ProcStats.read)
            let joinStart = ContinuousClock.now
            state.withLock {
                $0.connectedStats = connected
                $0.joinStart = joinStart
            }
            joinGate.open()
            await waitUntil(\.joinWaiter) { $0.joined + $0.failures >= self.peers }
            let joined = serverPID.flatMap(ProcStats.read)
            state.withLock {
                $0.joinedStats = joined
                $0.joinPhaseSeconds = (ContinuousClock.now - joinStart).seconds
            }
            holdGate.open()
        }
    }

    /// The instant the join phase began (peers schedule their join relative to it).
    func joinPhaseStart() async -> ContinuousClock.Instant {
        await joinGate.wait()
        return state.withLock { $0.joinStart } ?? .now
    }

    func waitForHold() async { await holdGate.wait() }

    func authenticated() { bump { $0.authenticated += 1 } }
    func failed() { bump { $0.failures += 1 } }
    func joined(latency: Duration) {
        bump {
            $0.joined += 1
            $0.latencies.append(latency.seconds * 1000)
        }
    }

    private func bump(_ change: (inout State) -> Void) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            change(&state)
            var ready: [CheckedContinuation<Void, Never>] = []
            if state.authenticated + state.failures >= peers, let waiter = state.authWaiter {
                state.authWaiter = nil
                ready.append(waiter)
            }
            if state.joined + state.failures >= peers, let waiter = state.joinWaiter {
                state.joinWaiter = nil
                ready.append(waiter)
            }
            return ready
        }
        for waiter in waiters { waiter.resume() }
    }

    private func waitUntil(
        _ slot: WritableKeyPath<State, CheckedContinuation<Void, Never>?>, _ condition: @escaping (State) -> Bool
    ) async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state -> Bool in
                if condition(state) { return true }
                state[keyPath: slot] = continuation
                return false
            }
            if done { continuation.resume() }
        }
    }

    func report(before: ProcStats?, serverPID: Int32?, finished: Bool, elapsed: Duration) -> String {
        let snapshot = state.withLock { $0 }
        let sorted = snapshot.latencies.sorted()
        func percentile(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return .nan }
            return sorted[min(sorted.count - 1, Int((p * Double(sorted.count)).rounded(.up)) - 1)]
        }
        var fields: [String: Any] = [
            "peers": peers, "authenticated": snapshot.authenticated, "joined": snapshot.joined,
            "failures": snapshot.failures, "finished": finished,
            "join_p50_ms": percentile(0.50), "join_p99_ms": percentile(0.99), "join_max_ms": sorted.last ?? .nan,
            "join_phase_s": snapshot.joinPhaseSeconds, "elapsed_s": elapsed.seconds,
        ]
        if let connected = snapshot.connectedStats {
            fields["server_rss_connected_mib"] = Double(connected.rssKiB) / 1024
        }
        if let joined = snapshot.joinedStats {
            fields["server_rss_joined_mib"] = Double(joined.rssKiB) / 1024
            if let connected = snapshot.connectedStats {
                fields["server_cpu_cores_join_phase"] = ProcStats.cores(from: connected, to: joined)
            }
            if let before {
                fields["server_cpu_cores_whole_run"] = ProcStats.cores(from: before, to: joined)
                fields["server_cpu_seconds"] = Double(joined.cpuTicks - before.cpuTicks) / ProcStats.ticksPerSecond
            }
        }
        let clean = fields.mapValues { value -> Any in
            if let double = value as? Double { return double.isFinite ? (double * 100).rounded() / 100 : -1 }
            return value
        }
        guard let data = try? JSONSerialization.data(withJSONObject: clean, options: [.sortedKeys]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}

/// A one-way gate: tasks wait until it opens.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let open = state.withLock { state -> Bool in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if open { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

extension Duration {
    var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
