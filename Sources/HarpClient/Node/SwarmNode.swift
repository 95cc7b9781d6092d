public import ChunkStore
internal import Foundation
public import Logging
internal import SignalingClient
public import SignalingProtocol
public import SwarmKit
internal import Synchronization

/// Where and how this device meets peers: the signaling server and the local peer port.
public struct PeerSettings: Sendable {
    /// ws:// or wss:// URL of the signaling server, or nil (no swarm: the server alone).
    public var signalURL: String?
    /// SHA-256 fingerprint of the signaling server's certificate (hex), for self-signed servers.
    public var signalPin: String?
    /// The shared join key of a private signaling server.
    public var joinKey: [UInt8]?
    /// The local address the peer listener binds to.
    public var listenHost = "0.0.0.0"
    /// The port the peer listener binds to; 0 lets the system choose. One port serves every swarm of the process.
    public var listenPort = 0
    /// The address told to other peers; by default the local address of the route to the signaling server.
    public var advertiseHost: String?
    /// Whether to ask the router for a port mapping of the listening port (UPnP IGD) and advertise it
    /// (`--no-port-mapping` turns it off). Only with a signaling server (the mapping is announced there), and only
    /// when the advertised address is private (``AddressScope/isPrivate(_:)``).
    public var portMapping = true

    /// No signaling server, listening on every address.
    public init() {}
}

/// Signs signaling challenges with this device's key.
struct DeviceSigner: SignalSigner {
    let identity: DeviceIdentity
    var publicKey: PublicKey32 { PublicKey32(bytes: identity.publicKey)! }
    func sign(_ message: [UInt8]) throws -> [UInt8] { identity.sign(message) }
}

/// Signs swarm joins with the swarm signing key derived from K (the server sees S only).
struct SwarmSigner: SignalSigner {
    let keys: SwarmKeys
    var publicKey: PublicKey32 { PublicKey32(bytes: keys.swarmID)! }
    func sign(_ message: [UInt8]) throws -> [UInt8] { keys.sign(message) }
}

/// The swarms a node's listener serves, by swarm id S: read on an event loop for each connection's preamble, so it is
/// a lock rather than actor state.
final class SwarmTable: Sendable {
    private let configurations = Mutex<[[UInt8]: PeerConfiguration]>([:])

    func set(_ swarmID: [UInt8], _ configuration: PeerConfiguration?) {
        configurations.withLock { $0[swarmID] = configuration }
    }

    func configuration(for swarmID: [UInt8]) -> PeerConfiguration? {
        configurations.withLock { $0[swarmID] }
    }
}

/// This device's presence in swarms: one signaling connection and one listening port for all of them (each connection
/// names its swarm in a preamble, `SwarmSelector`; the Noise pre-shared key is that swarm's key), and the dialling of
/// the peers that signaling and peer exchange name.
public actor SwarmNode {
    struct Entry {
        let swarm: Swarm
        let keys: SwarmKeys
        /// Hello capability bits (the same on accepted and dialled connections).
        var capabilities: UInt64
        var tasks: [Task<Void, Never>]
        var dialling: Set<String> = []
    }

    let identity: DeviceIdentity
    /// Where this node meets peers.
    public let settings: PeerSettings
    let logger: Logger
    var signal: SignalClient?
    private var signalTask: Task<Void, Never>?
    var entries: [SwarmID: Entry] = [:]
    /// The one peer listener, bound at the first `open`, and the swarms it serves.
    private var listener: PeerListener?
    private var listenTask: Task<Void, Never>?
    /// The bind of the listener, once started: the port it got.
    private var binding: Task<Int, any Error>?
    /// The port peers dial (0 until the listener is bound).
    public private(set) var listenPort = 0
    let table = SwarmTable()
    /// Swarms this node joined at the signaling server, and the members it reported (for the user's information).
    var joins: [SwarmID: Int] = [:]
    /// Every open connection's path (direct, mapped, punched, relayed).
    let linkTable = LinkTable()
    /// Direct connections that can carry more swarms, by the peer's device key (SwarmNode+Trunks.swift).
    var trunks: [[UInt8]: [TrunkEntry]] = [:]
    /// Devices being dialled for some swarm, and the dials of other swarms waiting to attach to that connection.
    var dialsInFlight: [[UInt8]: [CheckedContinuation<Void, Never>]] = [:]
    /// Hole punches by peer device key, and the peers this side asked the server to punch with.
    var punchProgress: [[UInt8]: PunchProgress] = [:]
    var punchRequested: Set<[UInt8]> = []
    /// The port mapping this node's router granted, if any (advertised as a `mapped@` candidate).
    var mapped: Candidate?
    /// Asks for, renews and replaces the mapping (see SwarmNode+PortMapping.swift).
    var mappingTask: Task<Void, Never>?
    /// What to delete at shutdown.
    var currentMapping: (mapper: PortMapper, mapping: PortMapper.Mapping)?
    /// Bytes uploaded by swarms already closed.
    private var closedUploads: Int64 = 0
    /// Finished swarms that still serve peers fetching from them, until `waitForLingering` or a deadline.
    private var lingering: [SwarmID: Task<Void, Never>] = [:]

    /// Where every swarm's engine records its events and actions (`get --record-engine`), if anywhere.
    let recorder: EngineRecorder?

    /// A node for the device `identity`; nothing is opened until `start()` and `open(...)`.
    public init(identity: DeviceIdentity, settings: PeerSettings, logger: Logger, recorder: EngineRecorder? = nil) {
        self.identity = identity
        self.settings = settings
        self.logger = logger
        self.recorder = recorder
    }

    /// Whether a signaling server is configured.
    public var hasSignaling: Bool { settings.signalURL != nil }

    /// Connects to the signaling server (in the background; it reconnects by itself).
    public func start() {
        guard signal == nil, let url = settings.signalURL else { return }
        var configuration = SignalClient.Configuration(
            url: url, pinnedCertificateSHA256: settings.signalPin, joinKey: settings.joinKey)
        configuration.maxBackoff = .seconds(10)
        let client = SignalClient(
            configuration: configuration, device: DeviceSigner(identity: identity), logger: logger)
        signal = client
        signalTask = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                group.addTask { [weak self] in
                    for await event in client.events {
                        await self?.handle(event)
                    }
                }
            }
        }
    }

    /// Bytes sent to peers, and peers connected, over every open swarm.
    public func totals() async -> (
        bytesUploaded: Int64, peers: Int, swarms: Int, uploadRate: Double, downloadRate: Double
    ) {
        var uploaded: Int64 = 0
        var peers = 0
        var up = 0.0
        var down = 0.0
        for entry in entries.values {
            let snapshot = await entry.swarm.snapshot
            uploaded += snapshot.bytesUploaded
            peers += snapshot.peers
            up += snapshot.uploadRate
            down += snapshot.downloadRate
        }
        return (uploaded + closedUploads, peers, entries.count, up, down)
    }

    /// Leaves every swarm, closes listeners and the signaling connection, deletes the port mapping.
    public func shutdown() async {
        for id in Array(entries.keys) { await close(id) }
        await stopPortMapping()
        try? await listener?.close()
        listenTask?.cancel()
        listener = nil
        binding = nil
        signalTask?.cancel()
        signalTask = nil
        signal = nil
    }

    /// Opens the swarm of the version with content root `root` and swarm keys `keys` (from R and the sidecar's σ): a
    /// listener, the join at the signaling server, and connections to the members it names. Returns the swarm (already
    /// started), after the signaling server answered the join (at most 10 s), or at once with `awaitJoin` false (a
    /// seeder of many files: the client paces its joins under the server's message rate, so thousands of them take
    /// minutes, and no file should wait for the others' turns).
    public func open(
        root: Hash256, keys: SwarmKeys, chunking: ChunkingParameters, expectedSize: Int64?, options: Swarm.Options,
        awaitJoin: Bool = true
    ) async throws -> Swarm {
        let id = keys.signalID
        if let existing = entries[id] { return existing.swarm }
        let swarm = Swarm(
            root: root, chunking: chunking, expectedSize: expectedSize, identity: identity, options: options,
            logger: logger, recorder: recorder)
        let port = try await listen(templateKey: keys.swarmKey)
        let capabilities = options.superSeed ? Hello.Capability.superSeeding : 0
        let advertised = advertiseHost()
        if let own = PeerAddress(hostAndPort: "\(advertised):\(port)") { await swarm.setOwnAddresses([own]) }
        await swarm.start()
        let exchange = Task { [weak self] in
            for await address in swarm.discoveries {
                guard let self else { return }
                await self.dial(id, host: address.host, port: Int(address.port), expectedKey: nil)
            }
        }
        let entry = Entry(swarm: swarm, keys: keys, capabilities: capabilities, tasks: [exchange])
        entries[id] = entry
        var accepting = peerConfiguration(entry, expectedKey: nil)
        accepting.swarmSelector = nil
        table.set(keys.swarmID, accepting)
        if let signal {
            // The join goes out at once, without a mapping the router may be granting: that comes in a second
            // announcement (`mappingSettled`). Waiting for it cost every fetcher behind a NAT without a router the
            // 1.2 s the discovery takes to find nothing, 9 % of the NAT testbed's swarm (docs/nat.md).
            // The members it names arrive as a `joined` event too (also after every rejoin): dialled there.
            // A signaling server that cannot be reached must not stall the transfer: the swarm goes on with the
            // peers that peer exchange finds and with the server; the client keeps trying in the background.
            let signer = SwarmSigner(keys: keys)
            // The local candidate (written plainly, as every client announces it); the reflexive one is added by the
            // client from the address the server reports; a mapped one once the router grants it.
            let addresses = announcedAddresses(host: advertised, port: port)
            let reflexivePort = UInt16(exactly: port)
            guard awaitJoin else {
                // Owned by the entry: `close` cancels it with the swarm's other tasks.
                let joining = Task { [weak self] in
                    guard
                        let peers = try? await signal.join(
                            swarm: signer, addresses: addresses, reflexivePort: reflexivePort)
                    else { return }
                    await self?.recordJoin(id, peers: peers.count)
                }
                entries[id]?.tasks.append(joining)
                return swarm
            }
            let joined = await withTaskGroup(of: Int?.self) { group in
                group.addTask {
                    (try? await signal.join(swarm: signer, addresses: addresses, reflexivePort: reflexivePort))?.count
                }
                group.addTask {
                    try? await Task.sleep(for: .seconds(10))
                    return nil
                }
                let first = await group.next() ?? nil
                group.cancelAll()
                return first
            }
            if let joined {
                joins[id] = joined
            } else {
                logger.warning(
                    "the signaling server did not answer the join in 10 s; going on without it",
                    metadata: ["signal.url": "\(settings.signalURL ?? "")"])
            }
        }
        return swarm
    }

    private func recordJoin(_ id: SwarmID, peers: Int) {
        if entries[id] != nil { joins[id] = peers }
    }

    /// A fetch of this version finished and the caller does not seed it: the swarm keeps serving the connected peers
    /// that are still interested in its chunks, for at most `linger`, and closes when none is left. Peers that finish
    /// first thus keep feeding the last ones, instead of leaving them with the origin alone.
    public func finish(_ keys: SwarmKeys, linger: Duration) {
        let id = keys.signalID
        guard let entry = entries[id], linger > .zero, lingering[id] == nil else {
            Task { await close(id) }
            return
        }
        let deadline = ContinuousClock.now + linger
        lingering[id] = Task {
            while ContinuousClock.now < deadline, !Task.isCancelled, await entry.swarm.peersInterested > 0 {
                try? await Task.sleep(for: .milliseconds(250))
            }
            await self.close(id)
        }
    }

    /// Whether a finished swarm still serves peers (see `finish(_:linger:)`).
    public var isLingering: Bool { !lingering.isEmpty }

    /// Waits until every lingering swarm has closed (each has a deadline).
    public func waitForLingering() async {
        while let (_, task) = lingering.first {
            await task.value
        }
    }

    /// The swarm's finished fetch made it an origin (`Swarm.fetchFinished(store:)` returned true): connections from
    /// now on, accepted or dialled, say so in their `hello`, so that those peers ask it only for the chunks it offers.
    public func superSeeding(_ keys: SwarmKeys) {
        guard var entry = entries[keys.signalID], entry.capabilities & Hello.Capability.superSeeding == 0 else {
            return
        }
        entry.capabilities |= Hello.Capability.superSeeding
        entries[keys.signalID] = entry
        var accepting = peerConfiguration(entry, expectedKey: nil)
        accepting.swarmSelector = nil
        table.set(keys.swarmID, accepting)
    }

    /// Leaves the swarm and closes its listener and connections.
    public func close(_ id: SwarmID) async {
        lingering.removeValue(forKey: id)?.cancel()
        guard let entry = entries.removeValue(forKey: id) else { return }
        closedUploads += await entry.swarm.snapshot.bytesUploaded
        table.set(entry.keys.swarmID, nil)
        if let signal { await signal.leave(swarm: id) }
        await entry.swarm.stop()
        for task in entry.tasks { task.cancel() }
    }

    /// Binds the node's one peer listener if it is not bound yet, and returns its port. Each accepted connection goes
    /// to the swarm its preamble names.
    /// (`templateKey` only completes the template configuration, whose limits and deadline every swarm shares; each
    /// connection's handshake uses its own swarm's key.)
    func listen(templateKey: SecureBytes) async throws -> Int {
        // Swarms open concurrently (a folder's files): the first binds, the others wait for that bind.
        if let binding { return try await binding.value }
        var template = PeerConfiguration(identity: identity, swarmKey: templateKey)
        template.logger = logger
        let table = self.table
        let (host, port) = (settings.listenHost, settings.listenPort)
        let task = Task {
            try await PeerListener.bind(
                host: host, port: port, template: template, select: { table.configuration(for: $0) })
        }
        binding = Task { try await task.value.localAddress?.port ?? 0 }
        let bound: PeerListener
        do {
            bound = try await task.value
        } catch {
            binding = nil
            throw error
        }
        listener = bound
        listenPort = bound.localAddress?.port ?? 0
        // Only a host behind a NAT needs a mapping (a private advertised address; not loopback, not public).
        if settings.portMapping, signal != nil, let port = UInt16(exactly: listenPort), port != 0,
            AddressScope.isPrivate(advertiseHost())
        {
            startPortMapping(port: port)
        }
        // The task holds the node until `shutdown` closes the listener, which ends `run`.
        listenTask = Task {
            _ = try? await bound.run { connection in
                await self.accepted(connection)
            }
        }
        return listenPort
    }

    /// A connection the listener accepted for one of the open swarms: that swarm serves it until it ends.
    private func accepted(_ connection: PeerConnection) async {
        guard let selected = connection.swarmID, let id = PublicKey32(bytes: selected), let entry = entries[id] else {
            try? await connection.channel.channel.close()
            return
        }
        // A connection from a peer this side is punching with is the punch's (its SYN arrived before ours left).
        let device = connection.session.remoteDeviceKey
        let path: ConnectionPath = isPunching(device) ? .punched : .direct
        let trunk = makeTrunk(connection, path: path)
        let token = linkOpened(device, swarm: id, path: path)
        await entry.swarm.run(link: trunk.first, initiatedByUs: false, address: nil)
        linkClosed(token)
    }

    /// Leaves the swarm of `keys` (see `close(_:)`).
    public func close(_ keys: SwarmKeys) async {
        await close(keys.signalID)
    }
}
