import ChunkStore
import DevCloud
import Foundation
import HarpClient
import Logging
import NextcloudClient
import SignalingClient
import SignalingProtocol
import SignalingServer
import SwarmKit
import Testing

/// An in-process DevCloud on 127.0.0.1 (port 0) with the user alice, and the devices of a test, each with its own
/// chunk store, device key and node.
final class Cluster: Sendable {
    static let password = "alice-Account-PW-1"

    let cloud: DevCloudServer
    let base: URL
    let directory: String
    let appPassword: String
    let logger: Logger

    private init(cloud: DevCloudServer, base: URL, directory: String, appPassword: String, logger: Logger) {
        self.cloud = cloud
        self.base = base
        self.directory = directory
        self.appPassword = appPassword
        self.logger = logger
    }

    static func start() async throws -> Cluster {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "harpclient-\(UUID().uuidString)"
        ).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var logger = Logger(label: "harpclient.test")
        logger.logLevel = .warning
        let configuration = DevCloudConfiguration(
            dataDirectory: directory + "/cloud", users: [DevCloudConfiguration.User(name: "alice", password: password)])
        let cloud = DevCloudServer(configuration: configuration, logger: logger)
        _ = try await cloud.start(host: "127.0.0.1", port: 0)
        let base = try #require(URL(string: cloud.baseURL))
        let credentials = try await Authenticator(server: base, options: Self.options(), logger: logger)
            .exchangePassword(user: "alice", password: password)
        return Cluster(
            cloud: cloud, base: base, directory: directory, appPassword: credentials.appPassword, logger: logger)
    }

    static func options() -> TransportOptions {
        var options = TransportOptions(environment: [:])
        options.retry = RetryPolicy(maximumAttempts: 4, baseDelay: .milliseconds(2), maximumDelay: .milliseconds(20))
        return options
    }

    func client() -> NextcloudClient {
        NextcloudClient(
            credentials: Credentials(server: base, user: "alice", appPassword: appPassword), options: Self.options(),
            logger: logger)
    }

    /// A device named `name`: its own folder, chunk store, device key and node (started).
    func device(_ name: String, signalURL: String?, listenPort: Int = 0) async throws -> Device {
        let home = directory + "/" + name
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        var settings = PeerSettings()
        settings.signalURL = signalURL
        settings.listenHost = "127.0.0.1"
        settings.listenPort = listenPort
        settings.advertiseHost = "127.0.0.1"
        let identity = DeviceIdentity.generate()
        let node = SwarmNode(identity: identity, settings: settings, logger: logger)
        await node.start()
        return Device(
            home: home, store: try ChunkStore(path: home + "/store.sqlite"), identity: identity, node: node,
            client: client(), logger: logger)
    }

    /// Writes `count` deterministic bytes to a local file and returns its path.
    func makeFile(_ name: String, count: Int, seed: UInt8 = 7) throws -> (path: String, bytes: [UInt8]) {
        var state = UInt64(seed) &+ 0x9E37_79B9_7F4A_7C15
        let bytes = (0..<count).map { _ -> UInt8 in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        let path = directory + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return (path, bytes)
    }

    func stop() async {
        await cloud.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// One device of a test.
struct Device: Sendable {
    let home: String
    let store: ChunkStore
    let identity: DeviceIdentity
    let node: SwarmNode
    let client: NextcloudClient
    let logger: Logger

    func fetcher(useServer: Bool = true, seedAfter: Bool = false) -> FileFetcher {
        var options = FileFetcher.Options()
        options.useServer = useServer
        options.seedAfter = seedAfter
        options.linger = .zero
        return FileFetcher(
            client: client, store: store, node: node, identity: identity, options: options, logger: logger)
    }

    /// Indexes the local file at `path` and seeds it in the swarm of `sidecar` (as `seed` and `put` do).
    func seed(_ path: String, sidecar: Sidecar) async throws {
        let outcome = try store.index(file: path)
        let manifest = try #require(try store.manifest(root: outcome.root))
        var options = Swarm.Options()
        options.superSeed = true
        let swarm = try await node.open(
            root: outcome.root, keys: sidecar.swarmKeys, chunking: outcome.parameters, expectedSize: outcome.size,
            options: options)
        try await swarm.seed(manifest: manifest, store: store)
    }
}

/// Runs a signaling server on 127.0.0.1 (port 0) for the duration of `body`, which gets its URL.
func withSignalServer<T: Sendable>(
    directory: String, _ body: @escaping @Sendable (_ url: String) async throws -> T
) async throws -> T {
    var configuration = SignalServerConfiguration(dataDirectory: directory + "/signal")
    try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
    configuration.host = "127.0.0.1"
    configuration.port = 0
    configuration.messagesPerSecond = 1000
    configuration.messageBurst = 1000
    let server = try SignalServer(configuration: configuration, logger: Logger(label: "harpclient.signal"))
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            try await server.run()
            return nil
        }
        let port = try await server.waitUntilListening()
        group.addTask { try await body("ws://127.0.0.1:\(port)\(Signaling.webSocketPath)") }
        defer { group.cancelAll() }
        while let next = try await group.next() {
            if let value = next { return value }
        }
        throw CancellationError()
    }
}
