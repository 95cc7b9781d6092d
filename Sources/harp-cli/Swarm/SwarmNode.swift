import ChunkStore
import Foundation
import Logging
import NIOCore
import SignalingClient
import SignalingProtocol
import SwarmKit

/// Where and how this device meets peers: the signaling server and the local peer port.
struct PeerSettings: Sendable {
    /// ws:// or wss:// URL of the signaling server, or nil (no swarm: the server alone).
    var signalURL: String?
    /// SHA-256 fingerprint of the signaling server's certificate (hex), for self-signed servers.
    var signalPin: String?
    /// The shared join key of a private signaling server.
    var joinKey: [UInt8]?
    /// The local address peer listeners bind to.
    var listenHost = "0.0.0.0"
    /// The address told to other peers; by default the local address of the route to the signaling server.
    var advertiseHost: String?
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

/// This device's presence in swarms: one signaling connection for all of them, one peer listener per swarm (the
/// Noise pre-shared key is the swarm's key), and the dialling of the peers that signaling and peer exchange name.
actor SwarmNode {
    struct Entry {
        let swarm: Swarm
        let keys: SwarmKeys
        let listener: PeerListener
        let listenPort: Int
        /// Hello capability bits (the same on accepted and dialled connections).
        let capabilities: UInt64
        let tasks: [Task<Void, Never>]
        var dialling: Set<String> = []
    }

    let identity: DeviceIdentity
    let settings: PeerSettings
    let logger: Logger
    private var signal: SignalClient?
    private var signalTask: Task<Void, Never>?
    private var entries: [SwarmID: Entry] = [:]
    /// Swarms this node joined at the signaling server, and the members it reported (for the user's information).
    private(set) var joins: [SwarmID: Int] = [:]
    /// Bytes uploaded by swarms already closed.
    private var closedUploads: Int64 = 0
    /// Finished swarms that still serve peers fetching from them, until `waitForLingering` or a deadline.
    private var lingering: [SwarmID: Task<Void, Never>] = [:]

    init(identity: DeviceIdentity, settings: PeerSettings, logger: Logger) {
        self.identity = identity
        self.settings = settings
        self.logger = logger
    }

    /// Whether a signaling server is configured.
    var hasSignaling: Bool { settings.signalURL != nil }

    /// Connects to the signaling server (in the background; it reconnects by itself).
    func start() {
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
    func totals() async -> (
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

    /// Leaves every swarm, closes listeners and the signaling connection.
    func shutdown() async {
        for id in Array(entries.keys) { await close(id) }
        signalTask?.cancel()
        signalTask = nil
        signal = nil
    }

    /// Opens the swarm of the version with content root `root` and swarm keys `keys` (from R and the sidecar's σ): a
    /// listener, the join at the signaling server, and connections to the members it names. Returns the swarm (already
    /// started).
    func open(
        root: Hash256, keys: SwarmKeys, chunking: ChunkingParameters, expectedSize: Int64?, options: Swarm.Options
    ) async throws -> Swarm {
        let id = keys.signalID
        if let existing = entries[id] { return existing.swarm }
        let swarm = Swarm(
            root: root, chunking: chunking, expectedSize: expectedSize, identity: identity, options: options,
            logger: logger)
        var configuration = PeerConfiguration(identity: identity, swarmKey: keys.swarmKey)
        configuration.logger = logger
        if options.superSeed { configuration.capabilities = Hello.Capability.superSeeding }
        let listener = try await PeerListener.bind(host: settings.listenHost, port: 0, configuration: configuration)
        let port = listener.localAddress?.port ?? 0
        let advertised = advertiseHost()
        if let own = PeerAddress(hostAndPort: "\(advertised):\(port)") { await swarm.setOwnAddresses([own]) }
        await swarm.start()
        let listening = Task {
            _ = try? await listener.run { connection in
                await swarm.run(connection, initiatedByUs: false, address: nil)
            }
        }
        let exchange = Task { [weak self] in
            for await address in swarm.discoveries {
                guard let self else { return }
                await self.dial(id, host: address.host, port: Int(address.port), expectedKey: nil)
            }
        }
        entries[id] = Entry(
            swarm: swarm, keys: keys, listener: listener, listenPort: port, capabilities: configuration.capabilities,
            tasks: [listening, exchange])
        if let signal {
            // The members it names arrive as a `joined` event too (also after every rejoin): dialled there.
            // A signaling server that cannot be reached must not stall the transfer: the swarm goes on with the
            // peers that peer exchange finds and with the server; the client keeps trying in the background.
            let signer = SwarmSigner(keys: keys)
            let addresses = ["\(advertised):\(port)"]
            let joined = await withTaskGroup(of: Int?.self) { group in
                group.addTask { (try? await signal.join(swarm: signer, addresses: addresses))?.count }
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

    /// A fetch of this version finished and the caller does not seed it: the swarm keeps serving the connected peers
    /// that are still interested in its chunks, for at most `linger`, and closes when none is left. Peers that finish
    /// first thus keep feeding the last ones, instead of leaving them with the origin alone.
    func finish(_ keys: SwarmKeys, linger: Duration) {
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
    var isLingering: Bool { !lingering.isEmpty }

    /// Waits until every lingering swarm has closed (each has a deadline).
    func waitForLingering() async {
        while let (_, task) = lingering.first {
            await task.value
        }
    }

    /// Leaves the swarm and closes its listener and connections.
    func close(_ id: SwarmID) async {
        lingering.removeValue(forKey: id)?.cancel()
        guard let entry = entries.removeValue(forKey: id) else { return }
        closedUploads += await entry.swarm.snapshot.bytesUploaded
        if let signal { await signal.leave(swarm: id) }
        try? await entry.listener.close()
        await entry.swarm.stop()
        for task in entry.tasks { task.cancel() }
    }

    func close(_ keys: SwarmKeys) async {
        await close(keys.signalID)
    }

    private func handle(_ event: SignalClient.Event) {
        switch event {
        case .joined(let swarm, let peers):
            joins[swarm] = peers.count
            for peer in peers { connect(swarm, to: peer) }
        case .peerJoined(let swarm, let peer):
            // The newcomer dials the members; dial it too after a moment in case it cannot (the swarm keeps one
            // connection per pair when both succeed).
            Task { [weak self] in
                try? await Task.sleep(for: .seconds(2))
                await self?.connectIfNeeded(swarm, to: peer)
            }
        case .refused(let swarm, let code):
            logger.warning("the signaling server refused a join", metadata: ["swarm": "\(swarm)", "code": "\(code)"])
        case .serverError(let code, let message):
            logger.warning("signaling server error", metadata: ["code": "\(code)", "message": "\(message)"])
        case .connected, .disconnected, .peerLeft:
            break
        case .relayIncoming(let stream):
            Task { await self.acceptRelay(stream) }
        }
    }

    private func connectIfNeeded(_ swarm: SwarmID, to peer: PeerInfo) async {
        guard let entry = entries[swarm], !(await entry.swarm.isConnected(to: peer.device.bytes)) else { return }
        connect(swarm, to: peer)
    }

    private func connect(_ swarm: SwarmID, to peer: PeerInfo) {
        guard peer.device.bytes != identity.publicKey else { return }
        for text in peer.addresses {
            guard let address = PeerAddress(hostAndPort: text) else { continue }
            Task { await dial(swarm, host: address.host, port: Int(address.port), expectedKey: peer.device.bytes) }
            return
        }
    }

    /// Dials one peer of a swarm; the connection is served by the swarm until it ends. When the peer cannot be
    /// reached directly and its device key is known (from the signaling server), the connection goes through a relay
    /// stream of the signaling server instead.
    func dial(_ id: SwarmID, host: String, port: Int, expectedKey: [UInt8]?) async {
        let target = "\(host):\(port)"
        guard let entry = entries[id], !entry.dialling.contains(target) else { return }
        if let expectedKey {
            if await entry.swarm.isConnected(to: expectedKey) { return }
            if await entry.swarm.isBanned(expectedKey) { return }
        }
        if let address = PeerAddress(hostAndPort: target), await entry.swarm.isConnected(toAddress: address) { return }
        guard entries[id]?.dialling.insert(target).inserted == true else { return }
        let configuration = peerConfiguration(entry, expectedKey: expectedKey)
        do {
            let connection = try await PeerConnection.connect(host: host, port: port, configuration: configuration)
            serve(connection, in: id, entry.swarm, target: target, address: PeerAddress(hostAndPort: target))
        } catch {
            logger.debug("could not connect to a peer", metadata: ["address": "\(target)", "error": "\(error)"])
            dialEnded(id, target: target)
            if let expectedKey { await relay(id, to: expectedKey) }
        }
    }

    /// Connects to a member through a relay stream of the signaling server (it forwards Noise ciphertext only).
    private func relay(_ id: SwarmID, to device: [UInt8]) async {
        guard let signal, let entry = entries[id], let peer = PublicKey32(bytes: device) else { return }
        let target = "relay:\(peer)"
        guard !entry.dialling.contains(target), !(await entry.swarm.isConnected(to: device)),
            !(await entry.swarm.isBanned(device)), entries[id]?.dialling.insert(target).inserted == true
        else { return }
        do {
            let stream = try await signal.openRelay(swarm: id, to: peer)
            let connection = try await PeerConnection.over(
                stream: stream, role: .initiator, configuration: peerConfiguration(entry, expectedKey: device),
                write: { try await stream.write($0) }, close: { await stream.close() })
            logger.debug("connected through the signaling server's relay", metadata: ["peer": "\(peer)"])
            serve(connection, in: id, entry.swarm, target: target, address: nil)
        } catch {
            logger.debug("could not relay to a peer", metadata: ["peer": "\(peer)", "error": "\(error)"])
            dialEnded(id, target: target)
        }
    }

    /// A member that could not reach us directly opened a relay stream: the peer protocol runs over it as responder.
    /// The Noise handshake must prove the device key the signaling server names.
    private func acceptRelay(_ stream: RelayStream) async {
        guard let entry = entries[stream.swarm] else { return await stream.close() }
        do {
            let connection = try await PeerConnection.over(
                stream: stream, role: .responder, configuration: peerConfiguration(entry, expectedKey: nil),
                write: { try await stream.write($0) }, close: { await stream.close() })
            guard connection.session.remoteDeviceKey == stream.peer.bytes else {
                logger.warning("a relayed peer's device key is not the one the signaling server named")
                try? await connection.channel.channel.close()
                return
            }
            logger.debug("accepted a relayed connection", metadata: ["peer": "\(stream.peer)"])
            await entry.swarm.run(connection, initiatedByUs: false, address: nil)
        } catch {
            logger.debug("a relayed connection failed", metadata: ["peer": "\(stream.peer)", "error": "\(error)"])
        }
    }

    private func peerConfiguration(_ entry: Entry, expectedKey: [UInt8]?) -> PeerConfiguration {
        var configuration = PeerConfiguration(identity: identity, swarmKey: entry.keys.swarmKey)
        configuration.expectedRemoteDeviceKey = expectedKey
        configuration.listenPort = UInt16(entry.listenPort)
        configuration.capabilities = entry.capabilities
        configuration.logger = logger
        return configuration
    }

    /// Serves a connection this side opened until it ends; then `target` may be dialled again.
    private func serve(
        _ connection: PeerConnection, in id: SwarmID, _ swarm: Swarm, target: String, address: PeerAddress?
    ) {
        Task {
            await swarm.run(connection, initiatedByUs: true, address: address)
            self.dialEnded(id, target: target)
        }
    }

    /// The connection to `target` ended (or never started): it may be dialled again.
    private func dialEnded(_ id: SwarmID, target: String) {
        entries[id]?.dialling.remove(target)
    }

    /// The host other peers should dial: the configured one, else the local address of the route to the signaling
    /// server (found with a connected UDP socket, which sends nothing), else 127.0.0.1.
    private func advertiseHost() -> String {
        if let host = settings.advertiseHost { return host }
        if settings.listenHost != "0.0.0.0", settings.listenHost != "::" { return settings.listenHost }
        guard let url = settings.signalURL.flatMap(URL.init(string:)), let host = url.host else { return "127.0.0.1" }
        return LocalRoute.sourceAddress(toward: host) ?? "127.0.0.1"
    }
}

/// The local source address the kernel would use to reach a host.
enum LocalRoute {
    static func sourceAddress(toward host: String) -> String? {
        guard
            let target = (try? SocketAddress(ipAddress: host, port: 9))
                ?? (try? SocketAddress.makeAddressResolvingHost(host, port: 9))
        else { return nil }
        let fd = socket(Int32(target.protocol.rawValue), Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let connected = target.withSockAddr { address, length in connect(fd, address, socklen_t(length)) }
        guard connected == 0 else { return nil }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { return nil }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let family = Int32(storage.ss_family)
        let converted: UnsafePointer<CChar>? = withUnsafePointer(to: &storage) { pointer in
            if family == AF_INET {
                return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                    var address = v4.pointee.sin_addr
                    return inet_ntop(AF_INET, &address, &text, socklen_t(text.count))
                }
            }
            return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                var address = v6.pointee.sin6_addr
                return inet_ntop(AF_INET6, &address, &text, socklen_t(text.count))
            }
        }
        guard converted != nil else { return nil }
        return String(decoding: text.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension SwarmKeys {
    /// S as the signaling protocol names it.
    var signalID: SwarmID {
        guard let id = PublicKey32(bytes: swarmID) else { preconditionFailure("a swarm id is 32 bytes") }
        return id
    }
}
