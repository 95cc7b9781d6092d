import CoreMetrics
import Prometheus
import Synchronization

/// The server's metrics, each declared once below with its Prometheus name and help text, and rendered by
/// `GET /metrics` in Prometheus text format (names listed in docs/operations-signaling.md).
///
/// The code counts through swift-metrics' types (`Counter`, `Meter`, `Timer`); their handlers live in a
/// `PrometheusCollectorRegistry` that this server owns. The global `MetricsSystem` is never bootstrapped, so two
/// servers in one process (as in the tests) count apart, and an application embedding the server keeps its own
/// metrics backend.
final class ServerMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()

    // Counted as things happen.
    let refusedConnections: CoreMetrics.Counter
    let requestTimeouts: CoreMetrics.Counter
    let connections: Meter
    let authenticated: Meter
    let joins: CoreMetrics.Counter
    let refusedProofs: CoreMetrics.Counter
    let refusedJoinKeys: CoreMetrics.Counter
    let refusedSwarmProofs: CoreMetrics.Counter
    let bans: CoreMetrics.Counter
    let bannedConnections: CoreMetrics.Counter
    let closedForAbuse: CoreMetrics.Counter
    let relayStreams: CoreMetrics.Counter
    let relayedBytes: CoreMetrics.Counter
    /// Hole punches the server coordinated, and those the requester reported connected (docs/nat.md).
    let punchAttempts: CoreMetrics.Counter
    let punchSuccesses: CoreMetrics.Counter
    /// Of the punches coordinated, the spray punches (one end behind a symmetric NAT).
    let sprayPunches: CoreMetrics.Counter
    let logAppends: CoreMetrics.Counter
    let logAppendConflicts: CoreMetrics.Counter
    let logAppendRefusals: CoreMetrics.Counter
    let checkpointsPublished: CoreMetrics.Counter
    let witnessCosigned: CoreMetrics.Counter
    /// `add-checkpoint` requests refused with 409 or 422: with a valid log signature, evidence of a misbehaving log.
    let witnessRefusals: CoreMetrics.Counter
    let enrollments: CoreMetrics.Counter
    let enrollmentRefusals: CoreMetrics.Counter
    let logRateLimited: CoreMetrics.Counter
    /// From a `join` message to the server's answer (`joined` or an error), refused joins included.
    let joinLatency: CoreMetrics.Timer

    // Read from the limiter, the hub and the ban store when scraped (see `render`).
    private let tcpConnections: Meter
    private let clientAddresses: Meter
    private let swarms: Meter
    private let memberships: Meter
    private let activeBans: Meter
    private let openRelays: Meter

    /// Source of connection ids (not exported).
    let nextConnectionID = Atomic<UInt64>(1)

    /// Buckets of ``joinLatency``: a join is a signature check and a hub update, well under a millisecond when idle;
    /// the upper buckets show queueing under load and the deliberate delay after failed proofs.
    static let joinBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .seconds(2.5),
    ]

    init() {
        let registry = self.registry
        let factory = PrometheusMetricsFactory(registry: registry)
        // Every name is `harp_signal_<name>[_<unit>]`.
        func name(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(
                namespace: "harp", subsystem: "signal", metricName: name, unitName: unit, helpText: help)
        }
        func counter(_ metric: String, _ help: String) -> CoreMetrics.Counter {
            let descriptor = name(metric, "total", help)
            return CoreMetrics.Counter(
                label: descriptor.name, dimensions: [], handler: registry.makeCounter(descriptor: descriptor),
                factory: factory)
        }
        func gauge(_ metric: String, _ help: String) -> Meter {
            let descriptor = name(metric, "", help)
            return Meter(
                label: descriptor.name, dimensions: [], handler: registry.makeGauge(descriptor: descriptor),
                factory: factory)
        }
        tcpConnections = gauge("tcp_connections", "Open TCP connections, upgraded or not.")
        clientAddresses = gauge("client_addresses", "Client addresses (IPv4, IPv6 /64) with open connections.")
        refusedConnections = counter(
            "refused_connections", "Connections closed at once: their address or the server was at its connection cap.")
        requestTimeouts = counter(
            "request_timeouts", "Connections closed for not sending a whole HTTP request in time.")
        connections = gauge("connections", "Open WebSocket connections.")
        authenticated = gauge("peers_connected", "Connections that proved their device key.")
        swarms = gauge("swarms", "Swarms with at least one member.")
        memberships = gauge("swarm_memberships", "Joined (peer, swarm) pairs.")
        joins = counter("joins", "Successful joins.")
        refusedProofs = counter("refused_proofs", "Refused device-key proofs in hello.")
        refusedJoinKeys = counter("refused_join_keys", "Refused organisation join-key proofs.")
        refusedSwarmProofs = counter("refused_swarm_proofs", "Refused swarm-key proofs in join.")
        bans = counter("bans", "Addresses banned since start.")
        activeBans = gauge("bans_active", "Addresses banned now.")
        bannedConnections = counter("banned_connections", "Connections refused because the address is banned.")
        closedForAbuse = counter("closed_for_abuse", "Connections closed for size, rate, timeout or garbage.")
        relayStreams = counter("relay_streams", "Relay streams opened.")
        openRelays = gauge("relay_streams_open", "Relay streams open now.")
        relayedBytes = counter("relayed_bytes", "Payload bytes forwarded by relays.")
        punchAttempts = counter("punch_attempts", "Hole punches coordinated (punch sent to both ends).")
        punchSuccesses = counter("punch_successes", "Hole punches the requester reported connected.")
        sprayPunches = counter("spray_punches", "Of the hole punches coordinated, spray punches (a symmetric NAT).")
        logAppends = counter("log_appends", "Version entries appended to this server's log.")
        logAppendConflicts = counter(
            "log_append_conflicts", "Appends answered 409: the lineage head was not the one the client expected.")
        logAppendRefusals = counter("log_append_refusals", "Appends refused: malformed, unsigned, skewed, unenrolled.")
        checkpointsPublished = counter(
            "log_checkpoints_published", "Checkpoints of this server's log published with a quorum of cosignatures.")
        witnessCosigned = counter("witness_cosigned", "Checkpoints of other logs this server cosigned as a witness.")
        witnessRefusals = counter(
            "witness_refusals", "add-checkpoint requests refused as inconsistent (409 or 422): a stale or forking log.")
        enrollments = counter("log_enrollments", "Devices enrolled or revoked through a Nextcloud share.")
        enrollmentRefusals = counter(
            "log_enrollment_refusals",
            "Enrollment challenges or enrollments refused (bad proof, full table, Nextcloud).")
        logRateLimited = counter(
            "log_rate_limited", "Version-log requests answered 429: the address's budget was spent.")
        let join = name("join", "seconds", "Time from a join message to the server's answer.")
        joinLatency = CoreMetrics.Timer(
            label: join.name, dimensions: [],
            handler: registry.makeDurationHistogram(descriptor: join, buckets: Self.joinBuckets), factory: factory)
    }

    /// The Prometheus exposition text; `swarms`, `members`, `openRelays` and `activeBans` come from the hub and the
    /// ban store, `sockets` from the connection limiter, all read at scrape time.
    func render(
        swarms: Int, members: Int, openRelays: Int, activeBans: Int, sockets: (total: Int, addresses: Int)
    ) -> String {
        tcpConnections.set(sockets.total)
        clientAddresses.set(sockets.addresses)
        self.swarms.set(swarms)
        memberships.set(members)
        self.openRelays.set(openRelays)
        self.activeBans.set(activeBans)
        return registry.emitToString()
    }

    /// The current value of the sample named `name` (no labels), as the last ``render`` would show it; `nil` if
    /// there is none. For tests and diagnostics; gauges read at scrape time are not refreshed by this.
    func value(_ name: String) -> Double? {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        for line in String(decoding: buffer, as: UTF8.self).split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1))
        }
        return nil
    }
}

extension CoreMetrics.Timer {
    /// Records the time elapsed since `start`.
    func record(since start: ContinuousClock.Instant) {
        recordNanoseconds(Int64((ContinuousClock.now - start) / .nanoseconds(1)))
    }
}
