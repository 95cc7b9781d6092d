public import ChunkStore
internal import HarpBasics

/// Every decision of the swarm of one file version, as a value: events go in with their time
/// (`handle(_:at:)`), the actions to carry out come out. It does no I/O, reads no clock and draws its randomness from
/// a generator seeded by the shell, so the same events at the same times give the same actions in any process: a
/// recording of a run replays exactly (`EngineRecording`), and a simulator drives it with virtual time.
///
/// The policies live here and in the small values it holds: `PiecePicker` (rarest first, endgame), `Choker`,
/// `RequestPipeline` (depth, overdue requests), `SuperSeeder`, `WebSeedScheduler` (the server as a last resort),
/// `ManifestAssembler`, `UploadQueue` and `UploadPacer`. `Swarm` is the shell that owns the connections and tasks.
public struct SwarmEngine: Sendable {
    /// How the swarm behaves.
    public struct Options: Sendable, Equatable, Codable {
        /// Range requests to the server at once (DESIGN: a few, so harp never becomes the server's load).
        public var serverRequests = 2
        /// Regular upload slots while fetching (plus one optimistic unchoke). Sixteen, not BitTorrent's four: the
        /// members are devices with read access, not strangers to make reciprocate, and with four the fetchers with
        /// slow uplinks stayed choked by most fast ones and finished last (docs/engine.md, "Choking").
        public var uploadSlots = 16
        /// Super-seed when seeding a version this device has from outside the swarm (an origin): chunks that
        /// connected peers have count as sent, and super-seeding ends once every chunk is in the swarm.
        public var superSeed = false
        /// A peer is banned for the session after this many bad chunks (it is dropped at the first).
        public var faultsBeforeBan = 2
        /// How long a fetch waits for some peer to give the manifest before giving up (the caller then uses the
        /// server alone).
        public var manifestTimeout: Duration = .seconds(15)
        /// Whether the web seed may be used at all (`--no-server` turns it off).
        public var useServer = true
        /// When no peer has delivered anything for this long, the server is also asked for chunks peers have.
        public var peerIdleBeforeServer: Double = 1.0
        /// At the start of a fetch with no peer connected yet, wait this long for peers before asking the server.
        public var serverGrace: Double = 0.75
        /// A fetch with no peer connected and no server to ask gives up after this long without progress.
        public var stallTimeout: Double = 60
        /// Most chunks requested from one peer at once.
        public var maxPipelineDepth = 16
        /// Upload limit of this swarm in bytes per second (nil: none).
        public var uploadLimit: Int?
        /// Files the version is made of: 1 for a file, more for a folder's bundle, whose files each end with a chunk
        /// that may be shorter than the chunking's minimum (the manifest bound allows one such chunk per file).
        public var filesInVersion = 1
        /// Test support: corrupt every n-th chunk this side uploads (0: never). Never set in normal use.
        public var corruptEveryNthUpload = 0
        public init() {}
    }

    public let root: Hash256
    public let chunking: ChunkingParameters
    /// The file size the caller expects (from the sidecar), checked against a peer's manifest.
    public let expectedSize: Int64?
    /// This device's key.
    public let localKey: [UInt8]
    public let options: Options

    /// The verified manifest, once known.
    public internal(set) var manifest: Manifest?
    /// The chunks this side has (verified and written), once the manifest is known.
    public internal(set) var have: ChunkSet?
    var picker: PiecePicker<LinkID>?
    /// Fetching: the download is open and chunks are being requested.
    var fetching = false
    /// Serving part of the version (`seedPart`): the bitfield goes out although `have` is not full.
    var seedingPart = false
    /// Waiting for a manifest to begin a fetch, until this time.
    var manifestDeadline: Double?
    var failure: EngineFailure?
    var finishedReported = false

    var links: [LinkID: PeerState] = [:]
    /// The connected links in the order they connected: every walk over the peers goes this way, so that decisions
    /// never depend on a dictionary's order.
    var order: [LinkID] = []
    var byKey: [[UInt8]: LinkID] = [:]
    var banned: Set<[UInt8]> = []
    var faults: [[UInt8]: Int] = [:]
    var usedPeers: Set<[UInt8]> = []
    var superSeeder: SuperSeeder<LinkID>?
    /// When super-seeding ends, once every first copy has arrived (`superSeedingSettles`).
    var superSeedEndsAt: Double?
    var choker: Choker<LinkID>
    var lastChoke: Double = -1000
    var chokeDirty = true
    var manifestAssembler = ManifestAssembler()
    var server: WebSeedScheduler
    var lastPeerDelivery: Double = 0
    /// The last time a peer other than a super-seeding origin was asked for chunks.
    var lastPeerAsked: Double = 0
    var lastProgress: Double = 0
    var originOnlyCache: (at: Double, strict: Bool, chunks: ChunkSet)?
    /// The last time a link around the relay delivered a block, the chunks relayed peers may be asked for (nil: all),
    /// and when each chunk that only relayed peers hold may be asked of them (-1: not waiting): `relayAllowedChunks`.
    var lastDirectDelivery: Double = -.infinity
    var relayCache: (at: Double, chunks: ChunkSet?)?
    var relayWaitUntil: [Double] = []
    /// Chunks handed to the shell to verify and write, and from where, and their bytes: while these reach
    /// `maxStoringBytes`, no peer is asked for more (`fill`), so that a disk or a hashing thread slower than the
    /// network makes the requests wait instead of the chunks piling up in memory.
    var storing: [Int: ChunkSource] = [:]
    var storingBytes = 0
    /// The most bytes of chunks waiting to be verified and written before requests to peers pause: 64 MiB, enough
    /// for about a quarter of a second at line rate on loopback.
    static let maxStoringBytes = 64 << 20
    var counters = SwarmSnapshot()
    var downloadMeter = RateMeter()
    var uploadMeter = RateMeter()
    var pacer: UploadPacer
    var ownAddresses: Set<PeerAddress> = []
    var announcedAddresses: Set<PeerAddress> = []
    var rng: EngineRandom
    var wakeAt: Double?

    /// The time of the event being handled, and the actions it produced so far.
    var now: Double = 0
    var actions: [EngineAction] = []

    public init(
        root: Hash256, chunking: ChunkingParameters, expectedSize: Int64?, localKey: [UInt8], options: Options,
        seed: UInt64
    ) {
        self.root = root
        self.chunking = chunking
        self.expectedSize = expectedSize
        self.localKey = localKey
        self.options = options
        self.rng = EngineRandom(seed: seed)
        self.choker = Choker(slots: options.uploadSlots)
        self.server = WebSeedScheduler(requests: options.serverRequests, grace: options.serverGrace)
        self.pacer = UploadPacer(limit: options.uploadLimit)
    }

    /// Handles one event that happened at `now` (seconds on any monotonic clock, never going back) and returns what
    /// to do, in order.
    public mutating func handle(_ event: EngineEvent, at now: Double) -> [EngineAction] {
        self.now = max(self.now, now)
        actions.removeAll(keepingCapacity: true)
        switch event {
        case .seed(let manifest): seed(manifest)
        case .seedPart(let manifest, let holding): seed(manifest, holding: holding)
        case .fetch(let manifest, let useServer): beginFetch(manifest: manifest, useServer: useServer)
        case .opened(let have, let localBytes): opened(have: have, localBytes: localBytes)
        case .fetchFinished: fetchFinished()
        case .ownAddresses(let addresses): ownAddresses.formUnion(addresses)
        case .connected(let info): connect(info)
        case .disconnected(let link): disconnect(link)
        case .violated(let link, let reason): drop(link, reason: reason, fault: reason != .idleTimeout)
        case .received(let link, let message): receive(message, from: link)
        case .uploadTaken(let link, let item): uploadTaken(item, by: link)
        case .blockSent(let link, let block): blockSent(block, to: link)
        case .backlogFull(let link):
            guard links[link] != nil else { break }
            log(.warning, "peer does not read: dropped", ["peer": peerName(link)])
            drop(link, reason: .internalError, fault: true)
        case .stored(let chunk, let source): stored(chunk, from: source)
        case .rejected(let chunk, let source): rejected(chunk, from: source)
        case .storageFailed(let why): fail(.storage(why))
        case .serverDone(let chunk): serverDone(chunk)
        case .serverFailed(let chunk, let failure): serverFailed(chunk, failure)
        case .tick:
            wakeAt = nil
            tick()
        }
        if fetching, failure == nil { fillServer() }
        scheduleWake()
        return actions
    }

    // MARK: State for the shell

    /// A copy of the counters (the shell adds what only it knows: send backlogs).
    public var snapshot: SwarmSnapshot {
        var s = counters
        s.chunkCount = manifest?.chunks.count ?? 0
        s.size = manifest?.size ?? expectedSize ?? 0
        s.chunksHave = have?.cardinality ?? 0
        if let manifest, let have, !have.isFull {
            s.bytesHave = have.reduce(Int64(0)) { $0 + Int64(manifest.chunks[$1].length) }
        } else if let manifest, have != nil {
            s.bytesHave = manifest.size
        }
        s.peers = links.count
        s.bannedPeers = banned.count
        s.peersUsed = usedPeers.count
        s.downloadRate = downloadMeter.rate(at: now)
        s.uploadRate = uploadMeter.rate(at: now)
        s.complete = have?.isFull ?? false
        s.superSeeding = superSeeder != nil
        s.failure = failure.map { "\($0)" }
        return s
    }

    /// Whether a connection to this device key exists.
    public func isConnected(to deviceKey: [UInt8]) -> Bool { byKey[deviceKey] != nil }

    /// Whether a connected peer accepts connections at `address`.
    public func isConnected(toAddress address: PeerAddress) -> Bool {
        links.values.contains { $0.listenAddress == address }
    }

    /// Connected peers that are still fetching (interested in what this side has).
    public var peersInterested: Int { links.values.filter(\.peerInterested).count }

    /// Whether this device key was banned in this session.
    public func isBanned(_ deviceKey: [UInt8]) -> Bool { banned.contains(deviceKey) }

    /// The link of a connected device, if any.
    public func link(of deviceKey: [UInt8]) -> LinkID? { byKey[deviceKey] }

    // MARK: Helpers

    mutating func emit(_ action: EngineAction) { actions.append(action) }

    mutating func send(_ messages: [OutboundMessage], to link: LinkID) {
        guard !messages.isEmpty, links[link] != nil else { return }
        emit(.send(link, messages))
    }

    mutating func send(_ message: OutboundMessage, to link: LinkID) { send([message], to: link) }

    mutating func log(_ level: EngineLog.Level, _ message: String, _ metadata: [String: String] = [:]) {
        emit(.log(EngineLog(level, message, metadata)))
    }

    func peerName(_ link: LinkID) -> String {
        links[link].map { DeviceIdentity.fingerprint(of: $0.deviceKey) } ?? link.description
    }

    mutating func fail(_ failure: EngineFailure) {
        guard self.failure == nil else { return }
        self.failure = failure
        fetching = false
        manifestDeadline = nil
        for chunk in server.cancelAll() { emit(.cancelRange(chunk: chunk)) }
        emit(.failed(failure))
    }
}
