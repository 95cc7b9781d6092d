public import ChunkStore
public import Logging
internal import NIOCore

/// The swarm of one file version (one content root R): the shell around a `SwarmEngine`. It owns the connections,
/// the download and the tasks, feeds the engine every event with the time it happened, and carries out the actions
/// that come back. Every decision is the engine's.
///
/// Connections come from outside (a listener, a dial after signaling or peer exchange) through
/// `run(_:initiatedByUs:address:)`, which serves one connection until it ends. A fetch is `fetch(_:knownManifest:)`;
/// seeding a complete version is `seed(manifest:store:)`. Hashing, disk writes and reads run on NIO's thread pool,
/// never on the actor; the engine asks for a tick when something is due (`EngineAction.wake`), and one timer feeds it.
public actor Swarm {
    public typealias Options = SwarmEngine.Options
    public typealias Snapshot = SwarmSnapshot

    /// A fetch's destination: the caller opens the download once the manifest is known.
    public struct FetchTarget: Sendable {
        public var openSink: @Sendable (Manifest) throws -> DownloadSink
        public var webSeed: (any WebSeed)?
        public init(openSink: @escaping @Sendable (Manifest) throws -> DownloadSink, webSeed: (any WebSeed)?) {
            self.openSink = openSink
            self.webSeed = webSeed
        }
    }

    public let root: Hash256
    public let chunking: ChunkingParameters
    /// The file size the caller expects (from the sidecar), checked against a peer's manifest.
    public let expectedSize: Int64?
    let identity: DeviceIdentity
    let options: Options
    let logger: Logger
    private let clockStart = ContinuousClock.now
    var engine: SwarmEngine
    let recorder: EngineRecorder.Swarm?

    var connections: [LinkID: LinkHandle] = [:]
    var nextLinkID: UInt64 = 0
    var peakBacklog = 0
    var uploadsSinceCorruption = 0

    var sink: DownloadSink?
    var store: ChunkStore?
    /// Reads the chunks served from `store` (made at the first such read, again when the store changes).
    var versionReader: VersionReader?
    var webSeed: (any WebSeed)?
    /// Chunks being assembled from peers' pieces, and the server's answers, until the engine says what to do.
    var assemblies: [AssemblyKey: ChunkAssembly] = [:]
    /// Per link, the chunks of the block requests queued for its upload loop, one entry per run of requests for the
    /// same chunk, in the order they were queued: the loop reads the next one while it sends the current one
    /// (`uploadLoop`). At most one entry per queued item, so bounded like the upload queue.
    var queuedChunks: [LinkID: CircularBuffer<Int>] = [:]
    /// Links a new connection of the same peer replaced (`EngineAction.handOver`): their close waits
    /// ``replacedLinkGrace``, for at most ``maxLingeringReplaced`` links at a time (a peer that reconnects in a loop
    /// gets its old connections closed at once).
    var replaced: Set<LinkID> = []
    var lingeringReplaced = 0
    static var replacedLinkGrace: Duration { .seconds(2) }
    static var maxLingeringReplaced: Int { 8 }
    var serverBytes: [Int: [UInt8]] = [:]
    /// Work for the running fetch's task group: writes and server requests.
    var jobs: AsyncStream<FetchJob>.Continuation?
    var rangeCancels: [Int: AsyncStream<Void>.Continuation] = [:]
    var storageError: ChunkStoreError?
    var progress = FetchProgress()
    var waiter: (until: FetchProgress.Milestone, continuation: CheckedContinuation<Void, any Error>)?

    private var timer: Task<Void, Never>?
    private var timerAt: Double?
    private var started = false

    /// Addresses of swarm members learnt through peer exchange that this side is not connected to: dial them.
    public nonisolated let discoveries: AsyncStream<PeerAddress>
    private let discoverySink: AsyncStream<PeerAddress>.Continuation

    public init(
        root: Hash256, chunking: ChunkingParameters, expectedSize: Int64?, identity: DeviceIdentity,
        options: Options = Options(), logger: Logger, recorder: EngineRecorder? = nil
    ) {
        self.root = root
        self.chunking = chunking
        self.expectedSize = expectedSize
        self.identity = identity
        self.options = options
        var logger = logger
        logger[metadataKey: "swarm.root"] = "\(root.hex.prefix(12))"
        self.logger = logger
        let seed = UInt64.random(in: .min ... .max)
        engine = SwarmEngine(
            root: root, chunking: chunking, expectedSize: expectedSize, localKey: identity.publicKey,
            options: options, seed: seed)
        self.recorder = recorder?.swarm(
            EngineRecorder.Header(
                root: root, chunking: chunking, expectedSize: expectedSize, localKey: identity.publicKey,
                options: options, seed: seed))
        (discoveries, discoverySink) = AsyncStream.makeStream(
            of: PeerAddress.self, bufferingPolicy: .bufferingNewest(256))
    }

    /// Seconds since this swarm was made, on the monotonic clock: the engine's time.
    var now: Double { (ContinuousClock.now - clockStart).secondsValue }

    // MARK: Life

    /// Lets the engine's timer run (choking, overdue requests, the web seed). Idempotent.
    public func start() {
        guard !started else { return }
        started = true
        feed(.tick)
    }

    /// Stops the timer, cancels server requests and says goodbye to every peer.
    public func stop() async {
        timer?.cancel()
        timer = nil
        started = false
        jobs?.finish()
        for cancel in rangeCancels.values { cancel.finish() }
        let handles = Array(connections.values)
        await withTaskGroup(of: Void.self) { group in
            for handle in handles {
                group.addTask { await handle.link.finish(reason: .shuttingDown) }
            }
        }
        recorder?.flush()
        discoverySink.finish()
    }

    /// Addresses that are this device's own (never dialled when peer exchange names them).
    public func setOwnAddresses(_ addresses: [PeerAddress]) { feed(.ownAddresses(addresses)) }

    /// The verified manifest, once known (from the caller, or assembled from a peer's pages).
    public var manifest: Manifest? { engine.manifest }

    /// Whether a connection to this device key exists.
    public func isConnected(to deviceKey: [UInt8]) -> Bool { engine.isConnected(to: deviceKey) }

    /// Whether a connected peer accepts connections at `address`.
    public func isConnected(toAddress address: PeerAddress) -> Bool { engine.isConnected(toAddress: address) }

    /// Connected peers that are interested in what this side has (they are still fetching).
    public var peersInterested: Int { engine.peersInterested }

    /// Whether this device key was banned in this session.
    public func isBanned(_ deviceKey: [UInt8]) -> Bool { engine.isBanned(deviceKey) }

    /// A copy of the counters.
    public var snapshot: Snapshot {
        var s = engine.snapshot
        s.peakPeerBacklog = connections.values.reduce(peakBacklog) {
            max($0, $1.link.sender.peakBufferedBytes)
        }
        return s
    }

    // MARK: Seeding

    /// Serves a complete version whose bytes the store can read (an indexed file).
    public func seed(manifest: Manifest, store: ChunkStore) throws(ChunkStoreError) {
        try manifest.verify(root: root)
        self.store = store
        feed(.seed(manifest))
    }

    /// Serves the chunks set in `holding` (one bit per chunk of `manifest`), which the store can read: with every bit
    /// set, the whole version (as `seed(manifest:store:)`). Called again with more chunks, it announces the new ones.
    public func seed(manifest: Manifest, store: ChunkStore, holding: ChunkSet) throws(ChunkStoreError) {
        try manifest.verify(root: root)
        guard holding.count == manifest.chunks.count else {
            throw .manifestMismatch("the chunks held do not fit the manifest")
        }
        self.store = store
        feed(holding.isFull ? .seed(manifest) : .seedPart(manifest, holding: holding))
    }

    // MARK: The engine

    /// Feeds one event to the engine and carries out its actions. `piece` is the payload of a piece being received.
    func feed(_ event: EngineEvent, piece: ByteBuffer? = nil) {
        let t = now
        let actions = engine.handle(event, at: t)
        recorder?.record(at: t, event, actions)
        for action in actions { perform(action, piece: piece) }
    }

    func perform(_ action: EngineAction, piece: ByteBuffer?) {
        switch action {
        case .send(let link, let messages):
            guard let handle = connections[link] else { return }
            do {
                try handle.link.sender.enqueue(messages.map(\.wire))
            } catch {
                if case .backlogExceeded = error { feed(.backlogFull(link)) }
            }
        case .close(let link, let reason):
            let wasReplaced = replaced.remove(link) != nil
            guard let handle = connections[link] else { return }
            guard wasReplaced, lingeringReplaced < Self.maxLingeringReplaced else { return handle.close(reason) }
            // The peer is taking the new connection too, a moment later than this side: a goodbye on the old one
            // that overtook it there would make it drop the old link before handing its requests over.
            lingeringReplaced += 1
            Task {
                try? await Task.sleep(for: Self.replacedLinkGrace)
                handle.close(reason)
                self.replacedClosed()
            }
        case .queueUpload(let link, let item):
            guard let handle = connections[link] else { return }
            if case .block(let block) = item, queuedChunks[link]?.last != Int(block.chunk) {
                queuedChunks[link, default: []].append(Int(block.chunk))
            }
            handle.uploads.yield(item)
        case .serveBlock, .servePage:
            break  // answered to the upload loop that asked (`take`)
        case .keepBlock(let link, let block, let chunkLength):
            guard let piece else { return }
            keep(piece, block: block, of: link, chunkLength: chunkLength)
        case .store(let chunk, let source):
            store(chunk, from: source)
        case .discard(let chunk, let source):
            switch source {
            case .peer(let link): assemblies[AssemblyKey(link: link, chunk: chunk)] = nil
            case .server: serverBytes[chunk] = nil
            }
        case .handOver(let old, let new, let chunks):
            replaced.insert(old)
            for chunk in chunks {
                if let bytes = assemblies.removeValue(forKey: AssemblyKey(link: old, chunk: chunk)) {
                    assemblies[AssemblyKey(link: new, chunk: chunk)] = bytes
                }
            }
        case .fetchRange(let chunk, let offset, let length):
            requestRange(chunk, offset: offset, length: length)
        case .cancelRange(let chunk):
            rangeCancels.removeValue(forKey: chunk)?.yield()
            serverBytes[chunk] = nil
        case .discovered(let address):
            discoverySink.yield(address)
        case .manifestReady:
            reached(.manifest)
        case .finished:
            reached(.finished)
        case .failed(let failure):
            progress.failure = failure
            resumeWaiter()
        case .wake(let at):
            arm(at: at)
        case .log(let entry):
            log(entry)
        }
    }

    private func log(_ entry: EngineLog) {
        let level: Logger.Level =
            switch entry.level {
            case .trace: .trace
            case .debug: .debug
            case .info: .info
            case .warning: .warning
            }
        logger.log(level: level, "\(entry.message)", metadata: entry.metadata.mapValues { .string($0) })
    }

    /// Arms the timer for `at`, unless it is armed for sooner: a tick at the sooner time asks again.
    private func arm(at: Double) {
        guard started else { return }
        if let timerAt, timerAt <= at, timer != nil { return }
        timer?.cancel()
        timerAt = at
        let delay = max(at - now, 0)
        timer = Task { [weak self] in
            try? await Task.sleep(for: .seconds(delay))
            guard !Task.isCancelled else { return }
            await self?.timerFired()
        }
    }

    private func replacedClosed() {
        lingeringReplaced -= 1
    }

    private func timerFired() {
        timer = nil
        timerAt = nil
        feed(.tick)
    }
}
