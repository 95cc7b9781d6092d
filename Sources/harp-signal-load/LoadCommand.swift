import ArgumentParser
import Foundation
import Logging
import SignalingProtocol
import Synchronization

/// `harp-signal-load`: opens many concurrent peer connections to a signaling server, joins them to swarms and
/// reports join latency (from sending `join` to receiving `joined`) and the server's RSS and CPU.
@main
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "harp-signal-load",
        abstract: "Load generator for the harp signaling server.",
        discussion: """
            Each peer is a real WebSocket connection that proves a fresh device key, then joins swarm (index mod \
            --swarms) with a real swarm-key signature. Connections are opened at --connect-rate per second; once all \
            are authenticated, joins are sent at --join-rate per second, spread over the peers, while every \
            connection stays open. Prints one JSON line with the figures. See bench/signal/run.sh.

            With --attack, runs one attack instead (idle, swarms, proofs, relay) from loopback addresses 127.0.0.2 \
            and up, and measures /healthz and a whole join from 127.0.0.9 before, during and after it, with the \
            server's RSS. The join key, if the server has one, comes from HARP_SIGNAL_JOIN_KEY. See \
            bench/signal/attack.sh.

            Examples:
              harp-signal-load --url ws://127.0.0.1:7447/v1/ws --peers 10000 --swarms 1000 --server-pid 4242
              harp-signal-load --url ws://127.0.0.1:7447/v1/ws --attack idle --attack-count 20000 --server-pid 4242
            """
    )

    @Option(help: "WebSocket URL of the server.")
    var url: String

    @Option(help: "Concurrent peer connections.")
    var peers = 10_000

    @Option(help: "Swarms to spread the peers over.")
    var swarms = 1_000

    @Option(help: "New connections per second.")
    var connectRate = 1_000.0

    @Option(help: "Joins per second (over all peers).")
    var joinRate = 1_000.0

    @Option(help: "PID of the server process, to read its RSS and CPU time from /proc.")
    var serverPID: Int32?

    @Option(help: "Give up after this many seconds.")
    var deadline = 300.0

    @Option(help: "Run this attack instead of the load: idle, swarms, proofs or relay.")
    var attack: String?

    @Option(help: "Attack size: connections (idle, proofs) or devices (swarms).")
    var attackCount = 1000

    @Option(help: "Source addresses the idle attack spreads over (127.0.0.2 and up).")
    var attackAddresses = 1

    @Option(help: "Swarms each attacking device tries to join (swarms attack).")
    var swarmsPerDevice = 1024

    @Option(help: "Seconds the attack is held while the legitimate client measures.")
    var holdSeconds = 10.0

    func validate() throws {
        if let attack, AttackRun.Kind(rawValue: attack) == nil {
            throw ValidationError("--attack must be one of idle, swarms, proofs, relay")
        }
        guard (1...250).contains(attackAddresses) else { throw ValidationError("--attack-addresses is 1 to 250") }
    }

    func run() async throws {
        if let attack, let kind = AttackRun.Kind(rawValue: attack) {
            guard let port = URLComponents(string: url)?.port else { throw ValidationError("--url needs a port") }
            let key = ProcessInfo.processInfo.environment["HARP_SIGNAL_JOIN_KEY"].flatMap {
                $0.isEmpty ? nil : Array($0.utf8)
            }
            let run = AttackRun(
                kind: kind, port: port, serverPID: serverPID, count: attackCount, addresses: attackAddresses,
                perDevice: swarmsPerDevice, holdSeconds: holdSeconds, joinKey: key)
            let report = await withCheckedContinuation { continuation in
                Thread.detachNewThread { continuation.resume(returning: AttackRun.json(run.execute())) }
            }
            print(report)
            return
        }
        var logger = Logger(label: "harp.signal.load") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .warning
        let swarmKeys = (0..<swarms).map { _ in Ed25519Signer() }
        let run = LoadRun(peers: peers, logger: logger)
        let start = ContinuousClock.now
        let before = serverPID.flatMap(ProcStats.read)
        let outcome = try await withThrowingTaskGroup(of: Bool.self) { group -> Bool in
            group.addTask {
                try await Task.sleep(for: .seconds(deadline))
                return false
            }
            group.addTask {
                try await run.execute(
                    url: url, swarmKeys: swarmKeys, connectRate: connectRate, joinRate: joinRate, serverPID: serverPID)
                return true
            }
            defer { group.cancelAll() }
            return try await group.next() ?? false
        }
        let elapsed = (ContinuousClock.now - start)
        let report = run.report(before: before, serverPID: serverPID, finished: outcome, elapsed: elapsed)
        print(report)
        if !outcome { throw ExitCode(2) }
    }
}
