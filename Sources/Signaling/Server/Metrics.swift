import Synchronization

/// The server's counters and gauges, rendered by `GET /metrics` in Prometheus text format.
final class ServerMetrics: Sendable {
    let connections = Atomic<Int>(0)
    let authenticated = Atomic<Int>(0)
    let joins = Atomic<Int>(0)
    let refusedProofs = Atomic<Int>(0)
    let refusedJoinKeys = Atomic<Int>(0)
    let refusedSwarmProofs = Atomic<Int>(0)
    let bans = Atomic<Int>(0)
    let bannedConnections = Atomic<Int>(0)
    let relayStreams = Atomic<Int>(0)
    let relayedBytes = Atomic<Int>(0)
    let closedForAbuse = Atomic<Int>(0)
    let refusedConnections = Atomic<Int>(0)
    let requestTimeouts = Atomic<Int>(0)
    /// Source of connection ids (not exported).
    let nextConnectionID = Atomic<UInt64>(1)

    enum Counter {
        case connections, authenticated, joins, refusedProofs, refusedJoinKeys, refusedSwarmProofs, bans
        case bannedConnections, relayStreams, relayedBytes, closedForAbuse, refusedConnections, requestTimeouts
    }

    func increment(_ counter: Counter, by amount: Int = 1) {
        add(counter, amount)
    }

    func decrement(_ counter: Counter) {
        add(counter, -1)
    }

    private func add(_ counter: Counter, _ amount: Int) {
        switch counter {
        case .connections: connections.wrappingAdd(amount, ordering: .relaxed)
        case .authenticated: authenticated.wrappingAdd(amount, ordering: .relaxed)
        case .joins: joins.wrappingAdd(amount, ordering: .relaxed)
        case .refusedProofs: refusedProofs.wrappingAdd(amount, ordering: .relaxed)
        case .refusedJoinKeys: refusedJoinKeys.wrappingAdd(amount, ordering: .relaxed)
        case .refusedSwarmProofs: refusedSwarmProofs.wrappingAdd(amount, ordering: .relaxed)
        case .bans: bans.wrappingAdd(amount, ordering: .relaxed)
        case .bannedConnections: bannedConnections.wrappingAdd(amount, ordering: .relaxed)
        case .relayStreams: relayStreams.wrappingAdd(amount, ordering: .relaxed)
        case .relayedBytes: relayedBytes.wrappingAdd(amount, ordering: .relaxed)
        case .closedForAbuse: closedForAbuse.wrappingAdd(amount, ordering: .relaxed)
        case .refusedConnections: refusedConnections.wrappingAdd(amount, ordering: .relaxed)
        case .requestTimeouts: requestTimeouts.wrappingAdd(amount, ordering: .relaxed)
        }
    }

    func value(_ counter: Counter) -> Int {
        switch counter {
        case .connections: connections.load(ordering: .relaxed)
        case .authenticated: authenticated.load(ordering: .relaxed)
        case .joins: joins.load(ordering: .relaxed)
        case .refusedProofs: refusedProofs.load(ordering: .relaxed)
        case .refusedJoinKeys: refusedJoinKeys.load(ordering: .relaxed)
        case .refusedSwarmProofs: refusedSwarmProofs.load(ordering: .relaxed)
        case .bans: bans.load(ordering: .relaxed)
        case .bannedConnections: bannedConnections.load(ordering: .relaxed)
        case .relayStreams: relayStreams.load(ordering: .relaxed)
        case .relayedBytes: relayedBytes.load(ordering: .relaxed)
        case .closedForAbuse: closedForAbuse.load(ordering: .relaxed)
        case .refusedConnections: refusedConnections.load(ordering: .relaxed)
        case .requestTimeouts: requestTimeouts.load(ordering: .relaxed)
        }
    }

    /// The Prometheus exposition text; `swarms`, `members` and `activeBans` come from the hub and the ban store,
    /// `sockets` and `addresses` from the connection limiter.
    func render(
        swarms: Int, members: Int, openRelays: Int, activeBans: Int, sockets: (total: Int, addresses: Int)
    ) -> String {
        func load(_ counter: Counter) -> Int { value(counter) }
        let rows: [(String, String, String, Int)] = [
            ("harp_signal_tcp_connections", "gauge", "Open TCP connections, upgraded or not.", sockets.total),
            (
                "harp_signal_client_addresses", "gauge", "Client addresses (IPv4, IPv6 /64) with open connections.",
                sockets.addresses
            ),
            (
                "harp_signal_refused_connections_total", "counter",
                "Connections closed at once: their address or the server was at its connection cap.",
                load(.refusedConnections)
            ),
            (
                "harp_signal_request_timeouts_total", "counter",
                "Connections closed for not sending a whole HTTP request in time.", load(.requestTimeouts)
            ),
            ("harp_signal_connections", "gauge", "Open WebSocket connections.", load(.connections)),
            ("harp_signal_peers_connected", "gauge", "Connections that proved their device key.", load(.authenticated)),
            ("harp_signal_swarms", "gauge", "Swarms with at least one member.", swarms),
            ("harp_signal_swarm_memberships", "gauge", "Joined (peer, swarm) pairs.", members),
            ("harp_signal_joins_total", "counter", "Successful joins.", load(.joins)),
            (
                "harp_signal_refused_proofs_total", "counter", "Refused device-key proofs in hello.",
                load(.refusedProofs)
            ),
            (
                "harp_signal_refused_join_keys_total", "counter", "Refused organisation join-key proofs.",
                load(.refusedJoinKeys)
            ),
            (
                "harp_signal_refused_swarm_proofs_total", "counter", "Refused swarm-key proofs in join.",
                load(.refusedSwarmProofs)
            ),
            ("harp_signal_bans_total", "counter", "Addresses banned since start.", load(.bans)),
            ("harp_signal_bans_active", "gauge", "Addresses banned now.", activeBans),
            (
                "harp_signal_banned_connections_total", "counter", "Connections refused because the address is banned.",
                load(.bannedConnections)
            ),
            (
                "harp_signal_closed_for_abuse_total", "counter",
                "Connections closed for size, rate, timeout or garbage.", load(.closedForAbuse)
            ),
            ("harp_signal_relay_streams_total", "counter", "Relay streams opened.", load(.relayStreams)),
            ("harp_signal_relay_streams_open", "gauge", "Relay streams open now.", openRelays),
            ("harp_signal_relayed_bytes_total", "counter", "Payload bytes forwarded by relays.", load(.relayedBytes)),
        ]
        var text = ""
        for (name, kind, help, value) in rows {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(kind)\n\(name) \(value)\n"
        }
        return text
    }
}
