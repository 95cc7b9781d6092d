import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
public import Logging
import NIOCore
public import ServiceLifecycle
import SignalingProtocol
import Synchronization
public import VersionLog

/// The signaling server: WebSocket peers on ``Signaling/webSocketPath``, `GET /healthz`, `GET /metrics`.
///
/// Run it as a swift-service-lifecycle `Service` (it stops gracefully on the group's shutdown) or call ``run()``
/// in a task and cancel it. ``waitUntilListening()`` returns the bound port, useful with port 0.
public final class SignalServer: Service, Sendable {
    private let configuration: SignalServerConfiguration
    private let logger: Logger
    let context: SessionContext
    private let tls: ServerTLS?
    private let listening = OneShot<Int>()
    /// Open TCP connections per client address and in total.
    let limiter: ConnectionLimiter
    /// The version log, this server as a witness of the others' logs, and the publisher of its checkpoints.
    let log: LogStore
    let witness: WitnessStore
    let publisher: LogPublisher
    /// Enrollment through the server's Nextcloud account, when it has one.
    let enrollment: ShareEnrollment?

    /// Opens (or creates) the database under the data directory and prepares TLS.
    public init(configuration: SignalServerConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        let store = try AbuseStore(directory: configuration.dataDirectory, configuration: configuration)
        try store.prune()
        tls = try ServerTLS.load(configuration.tls, dataDirectory: configuration.dataDirectory)
        limiter = ConnectionLimiter(
            maxTotal: Self.connectionCap(configuration.maxConnections),
            maxPerAddress: configuration.maxConnectionsPerAddress)
        if let tls { try store.setConfig("tls.fingerprint", tls.fingerprint) }
        let keys = try ServerKeys.loadOrCreate(directory: configuration.dataDirectory, name: configuration.logKeyName)
        log = try LogStore(pool: store.pool, key: keys.log, maxClockSkew: configuration.maxClockSkew)
        witness = WitnessStore(
            pool: store.pool, key: keys.witness, logKeys: configuration.federation.servers.map(\.logKey))
        let metrics = ServerMetrics()
        let log = self.log
        enrollment = configuration.nextcloud.map { account in
            ShareEnrollment(
                account: NextcloudEnrollmentAccount(account, logger: logger), log: log, logger: logger,
                nonces: EnrollmentNonces(
                    capacity: configuration.maxEnrollmentNonces, lifetime: configuration.enrollmentNonceLifetime),
                timeout: configuration.nextcloudTimeout)
        }
        publisher = LogPublisher(
            log: log, witnesses: configuration.federation.servers,
            quorum: configuration.witnessQuorum ?? configuration.federation.servers.count,
            interval: configuration.publishInterval, metrics: metrics, logger: logger)
        context = SessionContext(
            configuration: configuration,
            hub: Hub(limits: configuration),
            store: store,
            metrics: metrics,
            globalRelayBucket: SharedTokenBucket(
                rate: configuration.globalRelayBytesPerSecond,
                burst: max(configuration.globalRelayBytesPerSecond, Double(configuration.maxFrameSize))))
    }

    /// Takes the data directory's log lock (an exclusive `flock`, held while the server runs), so that
    /// `harp-cli signal enroll` never appends behind a running server's back (its tree would not hold the leaf).
    public static func lockLog(directory: String) throws -> Int32 {
        let path = directory + "/log.lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw SignalServerError.storage("cannot open \(path)") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw SignalServerError.storage("another process has the version log of \(directory) open")
        }
        return descriptor
    }

    /// This server's log key (its checkpoints' origin) and witness key, as verifier keys.
    public var logKey: NoteVerifierKey { log.key.verifierKey }
    public var witnessKey: NoteVerifierKey { witness.key.verifierKey }

    /// `requested`, kept under the process's open-file limit less a reserve (database, listener, event loops), so
    /// that a flood is refused by the cap, with the process still able to open files, rather than by `accept`
    /// failing.
    static func connectionCap(_ requested: Int) -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else {
            return requested
        }
        let reserve = 64
        return max(1, min(requested, Int(clamping: limit.rlim_cur) - reserve))
    }

    /// The SHA-256 fingerprint (hex) of the TLS certificate, for clients to pin; `nil` without TLS.
    public var certificateFingerprint: String? { tls?.fingerprint }

    /// `ws` or `wss`.
    public var scheme: String { tls == nil ? "ws" : "wss" }

    /// Waits until the listener is bound and returns its port.
    public func waitUntilListening() async throws -> Int {
        try await listening.value()
    }

    /// Serves until cancelled or until graceful shutdown.
    public func run() async throws {
        let router = Router(context: SignalRequestContext.self)
        let trustedProxies = Set(configuration.trustedProxies.compactMap { ClientAddress.parse($0)?.ipAddress })
        // One budget per address for both observation ports: a client asks each once per connection.
        let observedRateLimit = AddressRateLimit(
            rate: configuration.observedRequestsPerSecondPerAddress, burst: configuration.observedRequestBurst)
        let metrics = context.metrics
        let hub = context.hub
        let store = context.store
        let limiter = self.limiter
        router.get("/healthz") { _, _ in "ok\n" }
        LogRoutes(
            log: log, witness: witness, enrollment: enrollment,
            rateLimit: AddressRateLimit(
                rate: configuration.logRequestsPerSecondPerAddress, burst: configuration.logRequestBurst),
            trustedProxies: trustedProxies,
            metrics: metrics, logger: logger
        ).add(to: router)
        ObservedRoute(
            rateLimit: observedRateLimit,
            trustedProxies: trustedProxies
        ).add(to: router)
        router.get("/metrics") { _, _ -> Response in
            let stats = await hub.stats()
            let text = metrics.render(
                swarms: stats.swarms, members: stats.members, openRelays: stats.relays,
                activeBans: store.activeBanCount,
                sockets: limiter.counts)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        let context = self.context
        let logger = self.logger
        let shouldUpgrade:
            @Sendable (HTTPRequest, any Channel, Logger) throws -> ShouldUpgradeResult<
                WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>
            > = { request, channel, _ in
                guard request.path == Signaling.webSocketPath else { return .dontUpgrade }
                // Called on the channel's event loop (NIO's upgrader runs there), where the guard may be touched.
                guard channel.eventLoop.inEventLoop,
                    let connectionGuard = try? channel.pipeline.syncOperations.handler(
                        type: ConnectionGuardHandler.self)
                else { return .dontUpgrade }
                let forwarded = request.headerFields.filter { $0.name.canonicalName == "x-forwarded-for" }.map(\.value)
                guard let remote = connectionGuard.upgrade(forwardedFor: forwarded) else { return .dontUpgrade }
                let observed = connectionGuard.observed
                return .upgrade([:]) { inbound, outbound, _ in
                    var sessionLogger = logger
                    sessionLogger[metadataKey: "remote.address"] = "\(remote)"
                    await Session(
                        context: context, eventLoop: channel.eventLoop, remoteAddress: remote, observed: observed,
                        logger: sessionLogger
                    )
                    .run(inbound: inbound, outbound: outbound)
                }
            }
        let requestTimeout = TimeAmount.nanoseconds(Int64(configuration.requestTimeout.seconds * 1e9))
        let channelConfiguration = HTTP1WebSocketUpgradeChannel.Configuration(
            http1: .init(additionalChannelHandlers: [HTTPServingMarker()], idleTimeout: requestTimeout),
            ws: .init(
                maxFrameSize: configuration.maxFrameSize,
                autoPing: .enabled(timePeriod: configuration.pingInterval),
                closeTimeout: .seconds(5)))
        let guards = ConnectionGuards(
            limiter: limiter, requestTimeout: requestTimeout,
            trustedProxies: trustedProxies,
            metrics: metrics)
        let tlsConfiguration = tls?.configuration
        let server = HTTPServerBuilder { responder in
            let upgrade = HTTP1WebSocketUpgradeChannel(
                responder: responder, configuration: channelConfiguration, shouldUpgrade: shouldUpgrade)
            guard let tlsConfiguration else { return GuardedChannel(base: upgrade, guards: guards) }
            return GuardedChannel(base: try TLSChannel(upgrade, tlsConfiguration: tlsConfiguration), guards: guards)
        }
        let listening = self.listening
        let app = Application(
            router: router,
            server: server,
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: nil,
                backlog: configuration.backlog),
            onServerRunning: { channel in
                listening.fulfil(channel.localAddress?.port ?? 0)
            },
            logger: logger
        )
        let publisher = self.publisher
        let logLock = try Self.lockLog(directory: configuration.dataDirectory)
        defer { close(logLock) }
        try log.reload()
        var probe: ObservedProbeServer?
        do {
            if let port = configuration.probePort {
                probe = try await ObservedProbeServer.bind(
                    host: configuration.host, port: port, rateLimit: observedRateLimit, logger: logger)
                context.probePort.store(probe?.port ?? 0)
            }
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await publisher.run() }
                try await app.run()
                group.cancelAll()
            }
            await probe?.close()
            listening.fail(SignalServerError.notListening)
        } catch {
            await probe?.close()
            listening.fail(error)
            throw error
        }
    }
}

extension SignalServer {
    /// Runs the server until SIGINT or SIGTERM, then shuts down gracefully (open WebSockets get a close frame).
    public func runUntilSignalled() async throws {
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: self)], gracefulShutdownSignals: [.sigint, .sigterm], logger: logger))
        try await group.run()
    }
}
