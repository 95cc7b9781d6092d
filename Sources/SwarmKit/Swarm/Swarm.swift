public import ChunkStore
public import Logging
internal import NIOCore

/// The swarm of one file version (one content root R): the peers connected for it, what they have, and, while this
/// device fetches the version, the piece picker, the request pipelines and the web seed.
///
/// The decisions come from the I/O-free parts (`PiecePicker`, `RequestPipeline`, `Choker`, `SuperSeeder`); this actor
/// carries them out over `PeerConnection`s and a `WebSeed`. Connections come from outside (a listener, a dial after
/// signaling or peer exchange) through `run(_:initiatedByUs:address:)`, which serves one connection until it ends.
/// A fetch is `fetch(_:)`; seeding a complete version is `seed(manifest:store:)`. One maintenance loop, started by
/// `start()`, re-checks pipelines, the web seed and the upload slots a few times a second.
public actor Swarm {
    /// How the swarm behaves.
    public struct Options: Sendable {
        /// Range requests to the server at once (DESIGN: a few, so harp never becomes the server's load).
        public var serverRequests = 2
        /// Regular upload slots (plus one optimistic unchoke).
        public var uploadSlots = 4
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
        /// At the start of a fetch with no peer connected yet, wait this long for peers before asking the server (the
        /// signaling server's answer and the dials take a moment; without the wait every fetcher starting together
        /// would take its first chunks from the server).
        public var serverGrace: Double = 0.75
        /// A fetch with no peer connected and no server to ask gives up after this long without progress.
        public var stallTimeout: Double = 60
        /// Most chunks requested from one peer at once.
        public var maxPipelineDepth = 16
        /// Upload limit of this swarm in bytes per second (nil: none).
        public var uploadLimit: Int?
        /// Test support: corrupt every n-th chunk this side uploads (0: never). Never set in normal use.
        public var corruptEveryNthUpload = 0
        public init() {}
    }

    /// A fetch's destination: the caller opens the download once the manifest is known.
    public struct FetchTarget: Sendable {
        public var openSink: @Sendable (Manifest) throws -> DownloadSink
        public var webSeed: (any WebSeed)?
        public init(openSink: @escaping @Sendable (Manifest) throws -> DownloadSink, webSeed: (any WebSeed)?) {
            self.openSink = openSink
            self.webSeed = webSeed
        }
    }

    /// What the swarm has done so far.
    public struct Snapshot: Sendable, Equatable {
        public var chunkCount = 0
        public var chunksHave = 0
        public var size: Int64 = 0
        public var bytesHave: Int64 = 0
        /// Verified bytes that came from peers, from the server, and from the local store.
        public var bytesFromPeers: Int64 = 0
        public var bytesFromServer: Int64 = 0
        public var bytesFromLocal: Int64 = 0
        /// Bytes received that were not used (endgame duplicates, cancelled blocks, bad chunks).
        public var bytesWasted: Int64 = 0
        public var bytesUploaded: Int64 = 0
        public var chunksFromPeers = 0
        public var chunksFromServer = 0
        public var badChunks = 0
        public var peers = 0
        public var bannedPeers = 0
        /// Faults of peers: bad chunks or manifests, input out of the protocol's bounds, a backlog past its limit.
        public var peerFaults = 0
        /// Connections this side closed because of the peer (every fault, and protocol violations such as an idle
        /// timeout or a malformed frame found by the connection itself).
        public var peersDropped = 0
        /// Connections refused at once because the peer is banned in this swarm.
        public var bannedRefused = 0
        /// The largest send backlog any peer connection has had (`PeerSender.peakBufferedBytes`).
        public var peakPeerBacklog = 0
        /// Distinct peers that delivered at least one verified chunk.
        public var peersUsed = 0
        public var downloadRate: Double = 0
        public var uploadRate: Double = 0
        public var complete = false
        /// Whether this side super-seeds now (announcing one offered chunk per peer).
        public var superSeeding = false
        /// Set when this side stopped because the version changed on the server or another fatal error.
        public var failure: String?
    }

    public let root: Hash256
    public let chunking: ChunkingParameters
    /// The file size the caller expects (from the sidecar), checked against a peer's manifest.
    public let expectedSize: Int64?
    let identity: DeviceIdentity
    let options: Options
    let logger: Logger
    private let clockStart = ContinuousClock.now

    var manifest: Manifest?
    var sink: DownloadSink?
    var store: ChunkStore?
    var have: ChunkSet?
    private var picker: PiecePicker<PeerKey>?
    private var webSeed: (any WebSeed)?
    private var fetching = false
    private var fatal: SwarmError?

    var links: [PeerKey: PeerLink] = [:]
    private var nextLinkID: UInt64 = 0
    private var banned: Set<PeerKey> = []
    var faults: [PeerKey: Int] = [:]
    private var usedPeers: Set<PeerKey> = []
    var superSeeder: SuperSeeder<PeerKey>?
    private var choker: Choker<PeerKey>
    private var lastChoke: Double = -1000
    private var chokeDirty = true
    var manifestAssembly: ManifestAssembly?
    private var serverTasks: [Int: Task<Void, Never>] = [:]
    private var serverFailures = 0
    private var serverPausedUntil: Double = 0
    private var lastPeerDelivery: Double = 0
    var uploadsSinceCorruption = 0
    var nextUploadAt: Double = 0
    private var fetchStartedAt: Double = 0
    private var originOnlyCache: (at: Double, chunks: ChunkSet)?
    var counters = Snapshot()
    private var downloadMeter = RateMeter()
    private var uploadMeter = RateMeter()
    private var rng = SystemRandomNumberGenerator()
    private var maintenance: Task<Void, Never>?
    private var ownAddresses: Set<PeerAddress> = []
    private var announcedAddresses: Set<PeerAddress> = []

    /// Addresses of swarm members learnt through peer exchange that this side is not connected to: dial them.
    public nonisolated let discoveries: AsyncStream<PeerAddress>
    private let discoverySink: AsyncStream<PeerAddress>.Continuation

    public init(
        root: Hash256, chunking: ChunkingParameters, expectedSize: Int64?, identity: DeviceIdentity,
        options: Options = Options(), logger: Logger
    ) {
        self.root = root
        self.chunking = chunking
        self.expectedSize = expectedSize
        self.identity = identity
        self.options = options
        var logger = logger
        logger[metadataKey: "swarm.root"] = "\(root.hex.prefix(12))"
        self.logger = logger
        self.choker = Choker(slots: options.uploadSlots)
        (discoveries, discoverySink) = AsyncStream.makeStream(
            of: PeerAddress.self, bufferingPolicy: .bufferingNewest(256))
    }

    var now: Double {
        let elapsed = ContinuousClock.now - clockStart
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }

    // MARK: Life

    /// Starts the maintenance loop (choking, pipelines, the web seed). Idempotent.
    public func start() {
        guard maintenance == nil else { return }
        maintenance = Task { [weak self] in
            while !Task.isCancelled {
                guard let self else { return }
                let busy = await self.tick()
                // Fetching: react within a few milliseconds. Seeding: choking and pipelines need little attention,
                // and a device seeding thousands of files must not spin.
                try? await Task.sleep(for: .milliseconds(busy ? 25 : 250))
            }
        }
    }

    /// Stops the maintenance loop, cancels server requests and says goodbye to every peer.
    public func stop() async {
        maintenance?.cancel()
        maintenance = nil
        for task in serverTasks.values { task.cancel() }
        serverTasks.removeAll()
        let connections = links.values.map(\.connection)
        for link in links.values { link.requests.finish() }
        await withTaskGroup(of: Void.self) { group in
            for connection in connections {
                group.addTask { try? await connection.finish(reason: .shuttingDown) }
            }
        }
        discoverySink.finish()
    }

    /// Addresses that are this device's own (never dialled when peer exchange names them).
    public func setOwnAddresses(_ addresses: [PeerAddress]) {
        ownAddresses.formUnion(addresses)
    }

    /// Whether a connection to this device key exists.
    public func isConnected(to deviceKey: [UInt8]) -> Bool { links[PeerKey(deviceKey)] != nil }

    /// Whether a connected peer accepts connections at `address`.
    public func isConnected(toAddress address: PeerAddress) -> Bool {
        links.values.contains { $0.listenAddress == address }
    }

    /// Connected peers that are interested in what this side has (they are still fetching).
    public var peersInterested: Int { links.values.filter(\.peerInterested).count }

    /// Whether this device key was banned in this session.
    public func isBanned(_ deviceKey: [UInt8]) -> Bool { banned.contains(PeerKey(deviceKey)) }

    /// A copy of the counters.
    public var snapshot: Snapshot {
        var s = counters
        let t = now
        s.chunkCount = manifest?.chunks.count ?? 0
        s.size = manifest?.size ?? expectedSize ?? 0
        s.chunksHave = have?.cardinality ?? 0
        if let manifest, let have {
            s.bytesHave = have.reduce(Int64(0)) { $0 + Int64(manifest.chunks[$1].length) }
        }
        s.peers = links.count
        s.bannedPeers = banned.count
        s.peakPeerBacklog = links.values.reduce(counters.peakPeerBacklog) {
            max($0, $1.connection.sender.peakBufferedBytes)
        }
        s.peersUsed = usedPeers.count
        s.downloadRate = downloadMeter.rate(at: t)
        s.uploadRate = uploadMeter.rate(at: t)
        s.complete = have?.isFull ?? false
        s.superSeeding = superSeeder != nil
        s.failure = fatal.map { "\($0)" }
        return s
    }

    // MARK: Seeding

    /// Serves a complete version whose bytes the store can read (an indexed file).
    public func seed(manifest: Manifest, store: ChunkStore) throws(ChunkStoreError) {
        try manifest.verify(root: root)
        self.manifest = manifest
        self.store = store
        let wasComplete = have?.isFull ?? false
        have = ChunkSet(count: manifest.chunks.count, full: true)
        if options.superSeed, !wasComplete, manifest.chunks.count > 0 {
            // Only the chunks the swarm lacks are super-seeded: what connected peers have counts as sent.
            var seeder = SuperSeeder<PeerKey>(chunkCount: manifest.chunks.count)
            for link in links.values {
                for index in link.theirs ?? ChunkSet(count: 0) where index < manifest.chunks.count {
                    seeder.seen(index)
                }
            }
            superSeeder = seeder.isActive ? seeder : nil
        }
        for key in links.keys {
            applyAnnouncements(key)
            announce(to: key)
        }
    }

    // MARK: Fetching

    /// Fetches the version: waits for a manifest (known locally or from a peer), opens the download through
    /// `target`, copies local chunks, then fetches the rest from peers and the web seed until every chunk is
    /// verified and written. Returns the manifest; the caller compares with the server, finishes the download and renames.
    ///
    /// - Throws: `SwarmError.noManifest` when no peer gave one in time, `SwarmError.changedOnServer` when the web seed
    ///   found a new etag, `SwarmError.stalled` when nothing can make progress, a `ChunkStoreError` from the disk.
    public func fetch(_ target: FetchTarget, knownManifest: Manifest? = nil) async throws -> Manifest {
        webSeed = options.useServer ? target.webSeed : nil
        start()
        if let knownManifest, manifest == nil {
            try knownManifest.verify(root: root)
            install(knownManifest)
        }
        let deadline = now + Double(options.manifestTimeout.components.seconds)
        while manifest == nil {
            try Task.checkCancellation()
            if let fatal { throw fatal }
            if now > deadline { throw SwarmError.noManifest }
            try await Task.sleep(for: .milliseconds(20))
        }
        let manifest = self.manifest!
        let sink = try target.openSink(manifest)
        self.sink = sink
        let missingBefore = Set(sink.missing)
        let copied = try sink.adoptLocalChunks()
        let stillMissing = Set(sink.missing)
        for index in missingBefore.subtracting(stillMissing) {
            counters.bytesFromLocal += Int64(manifest.chunks[index].length)
        }
        var have = ChunkSet(count: manifest.chunks.count, full: true)
        for index in sink.missing { have.remove(index) }
        self.have = have
        var picker = PiecePicker<PeerKey>(chunkCount: manifest.chunks.count, have: have)
        for (key, link) in links {
            if let theirs = link.theirs {
                picker.peerJoined(key, has: link.superSeeding ? ChunkSet(count: theirs.count, full: true) : theirs)
            }
        }
        self.picker = picker
        lastPeerDelivery = now
        fetchStartedAt = now
        fetching = true
        for key in links.keys { announce(to: key) }
        logger.info(
            "fetch started",
            metadata: [
                "chunks": "\(manifest.chunks.count)", "chunks.have": "\(have.cardinality)",
                "chunks.local": "\(copied)", "peers": "\(links.count)",
            ])
        defer { fetching = false }
        var lastCount = have.cardinality
        var lastProgress = now
        while !(self.picker?.isComplete ?? true) {
            let count = self.have?.cardinality ?? 0
            if count != lastCount || !links.isEmpty {
                lastCount = count
                lastProgress = now
            } else if webSeed == nil, now - lastProgress > options.stallTimeout {
                cancelServerRequests()
                throw SwarmError.noSources
            }
            if Task.isCancelled {
                cancelServerRequests()
                throw CancellationError()
            }
            if let fatal {
                cancelServerRequests()
                throw fatal
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        cancelServerRequests()
        try sink.flush()
        for key in links.keys { setInterest(key, false) }
        return manifest
    }

    /// After the download was finished and renamed: serve from the store (the indexed file) from now on.
    public func fetchFinished(store: ChunkStore) {
        self.store = store
        self.sink = nil
        self.picker = nil
    }

    private func cancelServerRequests() {
        for task in serverTasks.values { task.cancel() }
        serverTasks.removeAll()
    }

    // MARK: Connections

    /// Serves one authenticated connection until it ends: registers the peer, exchanges announcements, answers its
    /// requests and carries ours. `address` is where the peer accepts connections, if known (for peer exchange).
    public nonisolated func run(_ connection: PeerConnection, initiatedByUs: Bool, address: PeerAddress?) async {
        let (requests, requestSink) = AsyncStream.makeStream(of: UploadRequest.self)
        let id: UInt64
        switch await admit(connection, initiatedByUs: initiatedByUs, address: address, requests: requestSink) {
        case .success(let admitted): id = admitted
        case .failure(let refusal):
            try? await connection.finish(reason: refusal.reason)
            return
        }
        let key = PeerKey(connection.session.remoteDeviceKey)
        do {
            try await connection.channel.executeThenClose { inbound, _ in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await self.uploadLoop(key: key, id: id, connection: connection, requests: requests)
                    }
                    defer { group.cancelAll() }
                    for try await message in inbound {
                        await self.receive(message, from: key, id: id)
                    }
                }
            }
        } catch {
            logger.debug("peer connection ended", metadata: ["peer": "\(key)", "error": "\(error)"])
            if let violation = error as? WireProtocolError { await violated(key, id: id, violation) }
        }
        requestSink.finish()
        await detach(key, id: id)
    }

    private func admit(
        _ connection: PeerConnection, initiatedByUs: Bool, address: PeerAddress?,
        requests: AsyncStream<UploadRequest>.Continuation
    ) -> Result<UInt64, Refusal> {
        let key = PeerKey(connection.session.remoteDeviceKey)
        if banned.contains(key) {
            counters.bannedRefused += 1
            return .failure(Refusal(reason: .badChunk))
        }
        if key.bytes == identity.publicKey { return .failure(Refusal(reason: .duplicateConnection)) }
        if let existing = links[key] {
            // The same side dialled again: the old connection is stale (the peer restarted or lost it), replace it.
            // Both sides dialled each other: keep the connection whose initiator has the smaller device key, the same
            // choice on both ends.
            if existing.initiatedByUs != initiatedByUs {
                let newInitiator = initiatedByUs ? identity.publicKey : key.bytes
                let oldInitiator = existing.initiatedByUs ? identity.publicKey : key.bytes
                guard newInitiator.lexicographicallyPrecedes(oldInitiator) else {
                    return .failure(Refusal(reason: .duplicateConnection))
                }
            }
            dropLink(key, reason: .duplicateConnection, fault: false)
        }
        nextLinkID += 1
        var address = address
        if address == nil, connection.session.remoteHello.listenPort != 0,
            let remote = connection.channel.channel.remoteAddress,
            let ip = PeerAddress.ipBytes(of: remote)
        {
            address = PeerAddress(ip: ip, port: connection.session.remoteHello.listenPort)
        }
        let link = PeerLink(
            id: nextLinkID, connection: connection, initiatedByUs: initiatedByUs, connectedAt: now,
            superSeeding: connection.session.remoteHello.capabilities & Hello.Capability.superSeeding != 0,
            listenAddress: address, requests: requests,
            pipeline: RequestPipeline(maxDepth: options.maxPipelineDepth))
        links[key] = link
        adjustChokes()
        logger.debug(
            "peer connected",
            metadata: [
                "peer": "\(key)", "initiator": "\(initiatedByUs ? "us" : "them")", "peers": "\(links.count)",
            ])
        announce(to: key)
        if manifest == nil { requestManifest(from: key) }
        exchangePeers(newcomer: key)
        return .success(nextLinkID)
    }

    func detach(_ key: PeerKey, id: UInt64) {
        guard links[key]?.id == id, forget(key) != nil else { return }
        logger.debug("peer disconnected", metadata: ["peer": "\(key)", "peers": "\(links.count)"])
    }

    /// Removes a link and everything that counted on it (availability, requests, offers, the manifest source), then
    /// rechokes. Returns the removed link.
    @discardableResult
    private func forget(_ key: PeerKey) -> PeerLink? {
        guard let link = links.removeValue(forKey: key) else { return nil }
        counters.peakPeerBacklog = max(counters.peakPeerBacklog, link.connection.sender.peakBufferedBytes)
        link.requests.finish()
        picker?.peerLeft(key)
        if var seeder = superSeeder {
            seeder.withdraw(key)
            // Chunks that left this origin once and that no connected peer holds any more are offered again.
            var lost = 0
            if seeder.isActive, let theirs = link.theirs {
                let holders = links.values.compactMap(\.theirs)
                for index in theirs where seeder.timesSent(index) == 1 {
                    guard !holders.contains(where: { $0.contains(index) }) else { continue }
                    seeder.lost(index)
                    lost += 1
                }
            }
            superSeeder = seeder
            if lost > 0 {
                logger.debug("chunks lost with a departing peer, offered again", metadata: ["chunks": "\(lost)"])
                for other in links.keys { offerNext(to: other) }
            }
        }
        if manifestAssembly?.source == key { manifestAssembly = nil }
        adjustChokes()
        return link
    }

    /// Closes a link after a fault; a peer with repeated faults is banned for the session.
    func dropLink(_ key: PeerKey, reason: GoodbyeReason, fault: Bool) {
        guard let link = forget(key) else { return }
        counters.peersDropped += 1
        if fault {
            counters.peerFaults += 1
            faults[key, default: 0] += 1
            if faults[key]! >= options.faultsBeforeBan {
                banned.insert(key)
                logger.warning("peer banned for this session", metadata: ["peer": "\(key)"])
            }
        }
        let connection = link.connection
        Task { try? await connection.finish(reason: reason) }
    }

    /// Tells a peer what this side has: the bitfield, or while super-seeding only the chunks offered to it.
    private func announce(to key: PeerKey) {
        guard let manifest, let have, var link = links[key] else { return }
        if superSeeder != nil {
            offerNext(to: key)
            return
        }
        guard !link.sentBitfield else { return }
        link.sentBitfield = true
        links[key] = link
        guard manifest.chunks.count <= Int(WireLimits.maxBitfieldChunks) else { return }
        send(.bitfield(have.bitfield), to: key)
    }

    /// Chunks offered to each peer while super-seeding: four shared among the interested peers, at least one each. A
    /// peer alone with the origin gets four, so it is not held to one chunk per round trip; with many peers each gets
    /// one, so that every first copy completes as soon as possible and can be passed on.
    private var superSeedWindow: Int {
        max(1, 4 / max(1, links.values.filter(\.peerInterested).count))
    }

    private func offerNext(to key: PeerKey) {
        guard var seeder = superSeeder, let link = links[key], let manifest else { return }
        let offers = seeder.nextOffers(
            for: key, lacking: link.theirs ?? ChunkSet(count: manifest.chunks.count), limit: superSeedWindow)
        superSeeder = seeder
        for offer in offers { send(.have(chunk: UInt32(offer)), to: key) }
    }

    private func exchangePeers(newcomer key: PeerKey) {
        let known = links.filter { $0.key != key }.compactMap(\.value.listenAddress)
        if !known.isEmpty {
            send(.peerExchange(Array(known.prefix(WireLimits.maxPeerExchangeAddresses))), to: key)
        }
        if let address = links[key]?.listenAddress {
            for other in links.keys where other != key { send(.peerExchange([address]), to: other) }
        }
    }

    // MARK: Inbound messages

    private func receive(_ message: WireMessage, from key: PeerKey, id: UInt64) {
        guard links[key]?.id == id else { return }
        // Requests and cancels come by the thousand: they change the link in place. A copy of the link held across
        // the change would make every request copy the peer's whole upload queue (copy on write).
        switch message {
        case .request(let block):
            guard links[key]?.amChoking == false else { return }
            do {
                try links[key]?.uploads.push(block)
            } catch {
                logger.warning("peer queued too many requests", metadata: ["peer": "\(key)"])
                return dropLink(key, reason: .malformedMessage, fault: true)
            }
            links[key]?.requests.yield(.block(block))
            return
        case .cancel(let block):
            links[key]?.uploads.cancel(block)
            return
        default:
            break
        }
        guard var link = links[key] else { return }
        switch message {
        case .bitfield(let bitfield):
            link.rawBitfield = bitfield
            links[key] = link
            applyAnnouncements(key)
        case .have(let chunk):
            guard recordHave(chunk, from: key) else { return }
            applyAnnouncements(key)
        case .choke:
            link.peerChoking = true
            for (chunk, _) in link.outstanding { picker?.failed(chunk, from: .peer(key)) }
            link.outstanding.removeAll()
            links[key] = link
        case .unchoke:
            link.peerChoking = false
            links[key] = link
            fill(key)
        case .interested:
            link.peerInterested = true
            links[key] = link
            adjustChokes()
        case .notInterested:
            link.peerInterested = false
            links[key] = link
            adjustChokes()
        case .request, .cancel:
            break
        case .piece(let piece):
            receivePiece(piece, from: key)
        case .manifestRequest(let page):
            queuePage(Int(page), from: key)
        case .manifestPage(let page):
            receivePage(page, from: key)
        case .peerExchange(let addresses):
            for address in addresses where !ownAddresses.contains(address) && !announcedAddresses.contains(address) {
                guard announcedAddresses.count < 4096 else { break }
                announcedAddresses.insert(address)
                discoverySink.yield(address)
            }
        case .goodbye, .hello, .keepAlive:
            break
        }
    }

    /// Turns a peer's raw announcements into its chunk set once the manifest is known, and updates the picker.
    func applyAnnouncements(_ key: PeerKey) {
        guard let manifest, var link = links[key] else { return }
        let count = manifest.chunks.count
        let before = link.theirs
        var theirs = before ?? ChunkSet(count: count)
        // The chunks this call adds: a whole bitfield once, then a few per `have` (walking the whole set at every
        // `have` would be quadratic over a large file).
        var added: [Int] = []
        if let bitfield = link.rawBitfield {
            guard bitfield.chunkCount == count else {
                return dropLink(key, reason: .malformedMessage, fault: true)
            }
            theirs = ChunkSet(bitfield)
            added = theirs.filter { !(before?.contains($0) ?? false) }
            link.rawBitfield = nil
        }
        for chunk in link.rawHaves {
            guard chunk < count else { return dropLink(key, reason: .malformedMessage, fault: true) }
            if theirs.insert(Int(chunk)) { added.append(Int(chunk)) }
        }
        link.rawHaves.removeAll()
        for chunk in link.earlyHaves ?? ChunkSet(count: 0) {
            guard chunk < count else { return dropLink(key, reason: .malformedMessage, fault: true) }
            if theirs.insert(chunk) { added.append(chunk) }
        }
        link.earlyHaves = nil
        link.theirs = theirs
        links[key] = link
        if var seeder = superSeeder {
            for index in added where seeder.timesSent(index) == 0 { seeder.seen(index) }
            superSeeder = seeder
            if !seeder.isActive {
                endSuperSeeding()
            } else {
                // Offers made before this peer's announcements (a peer that joined late, from the web seed) may name
                // chunks it has: replace them with ones it lacks, or it would wait for offers that never come. Only
                // then: a top-up scans for candidates, and doing it at every `have` would be quadratic over a file.
                let offered = seeder.offers(for: key)
                if !offered.isEmpty, added.contains(where: offered.contains) { offerNext(to: key) }
            }
        }
        if var picker {
            if link.superSeeding {
                if before == nil { picker.peerJoined(key, has: ChunkSet(count: count, full: true)) }
            } else if before == nil || picker.chunks(of: key) == nil {
                picker.peerJoined(key, has: theirs)
            } else {
                for index in added { picker.peer(key, has: index) }
            }
            self.picker = picker
        }
        // More announced chunks can only add interest: once interested, there is nothing to recompute.
        if before == nil || !link.amInterested { updateInterest(key) }
        fill(key)
    }

    private func updateInterest(_ key: PeerKey) {
        guard let link = links[key] else { return }
        guard fetching, let have, let theirs = link.theirs else { return setInterest(key, false) }
        // A super-seeding peer has every chunk, whatever it announced so far.
        if link.superSeeding { return setInterest(key, !have.isFull) }
        var wants = false
        for index in theirs where !have.contains(index) {
            wants = true
            break
        }
        setInterest(key, wants)
    }

    private func setInterest(_ key: PeerKey, _ interested: Bool) {
        guard var link = links[key], link.amInterested != interested else { return }
        link.amInterested = interested
        links[key] = link
        send(interested ? .interested : .notInterested, to: key)
    }

    // MARK: Requests and pieces

    /// Keeps the peer's pipeline full: as many chunks in flight as its bandwidth-delay product needs.
    private func fill(_ key: PeerKey) {
        guard fetching, var picker, var link = links[key], !link.peerChoking, link.amInterested,
            let manifest, let theirs = link.theirs
        else { return }
        let room = link.pipeline.depth(chunkSize: manifest.averageChunkLength) - link.outstanding.count
        guard room > 0 else { return }
        var restricted: ChunkSet? = link.superSeeding ? theirs : nil
        if link.superSeeding, links.values.contains(where: { !$0.superSeeding && $0.theirs != nil }) {
            // The origin (a super-seeder) is asked only for chunks no other connected peer has, so that its uplink,
            // the scarce one, sends each chunk about once; the others are traded between peers.
            restricted = originOnlyChunks(among: theirs, picker: picker)
        }
        let picks = picker.next(for: key, limit: room, restrictedTo: restricted, using: &rng)
        self.picker = picker
        guard !picks.isEmpty else { return }
        let t = now
        var requests: [WireMessage] = []
        for chunk in picks {
            let length = manifest.chunks[chunk].length
            var offsets: Set<UInt32> = []
            var offset = 0
            while offset < length {
                let block = min(Int(WireLimits.maxBlockLength), length - offset)
                requests.append(
                    .request(BlockRequest(chunk: UInt32(chunk), offset: UInt32(offset), length: UInt32(block))))
                offsets.insert(UInt32(offset))
                offset += block
            }
            link.outstanding[chunk] = Assembly(requestedAt: t, length: length, pending: offsets)
        }
        links[key] = link
        send(requests, to: key)
    }

    /// The chunks of `offered` that only super-seeding peers have (cached for 50 ms: this runs at every arrival).
    private func originOnlyChunks(among offered: ChunkSet, picker: PiecePicker<PeerKey>) -> ChunkSet {
        let t = now
        let supers = links.values.filter(\.superSeeding).count
        if originOnlyCache == nil || t - originOnlyCache!.at > 0.05 {
            var only = ChunkSet(count: picker.chunkCount)
            for index in 0..<picker.chunkCount where picker.availability(of: index) <= supers {
                _ = only.insert(index)
            }
            originOnlyCache = (t, only)
        }
        let only = originOnlyCache!.chunks
        return ChunkSet(count: offered.count, indexes: offered.lazy.filter { only.contains($0) })
    }

    private func receivePiece(_ piece: Piece, from key: PeerKey) {
        guard var link = links[key] else { return }
        let chunk = Int(piece.chunk)
        let length = piece.data.readableBytes
        let t = now
        link.recvMeter.add(length, at: t)
        downloadMeter.add(length, at: t)
        guard var assembly = link.outstanding[chunk], assembly.pending.contains(piece.offset) else {
            counters.bytesWasted += Int64(length)
            links[key] = link
            return
        }
        let offset = Int(piece.offset)
        guard length == assembly.blockLength(at: offset) else {
            return dropLink(key, reason: .malformedMessage, fault: true)
        }
        if assembly.buffer.isEmpty { assembly.buffer = [UInt8](repeating: 0, count: assembly.length) }
        assembly.buffer.withUnsafeMutableBytes { target in
            piece.data.withUnsafeReadableBytes { source in
                target.baseAddress!.advanced(by: offset).copyMemory(from: source.baseAddress!, byteCount: length)
            }
        }
        assembly.pending.remove(piece.offset)
        lastPeerDelivery = t
        if assembly.pending.isEmpty {
            link.outstanding[chunk] = nil
            link.pipeline.arrived(bytes: assembly.length, requestedAt: assembly.requestedAt, now: t)
            links[key] = link
            deliver(chunk, bytes: assembly.buffer, from: .peer(key))
        } else {
            link.outstanding[chunk] = assembly
            links[key] = link
        }
        fill(key)
    }

    /// A whole chunk arrived: verify and write it through the download sink, cancel duplicates, announce it.
    private func deliver(_ chunk: Int, bytes: [UInt8], from source: PiecePicker<PeerKey>.Source) {
        guard let sink, var picker, var have else { return }
        if have.contains(chunk) {
            counters.bytesWasted += Int64(bytes.count)
            _ = picker.received(chunk, from: source)
            self.picker = picker
            return
        }
        do {
            try sink.write(index: chunk, bytes: bytes)
        } catch .chunkMismatch {
            counters.badChunks += 1
            counters.bytesWasted += Int64(bytes.count)
            picker.failed(chunk, from: source)
            self.picker = picker
            if case .peer(let key) = source {
                logger.warning(
                    "peer sent a chunk that failed verification", metadata: ["peer": "\(key)", "chunk": "\(chunk)"])
                dropLink(key, reason: .badChunk, fault: true)
            } else {
                fatal = .serverMismatch(chunk: chunk)
            }
            return
        } catch {
            fatal = .storage(error)
            return
        }
        _ = have.insert(chunk)
        self.have = have
        let others = picker.received(chunk, from: source)
        self.picker = picker
        switch source {
        case .peer(let key):
            counters.bytesFromPeers += Int64(bytes.count)
            counters.chunksFromPeers += 1
            usedPeers.insert(key)
        case .server:
            counters.bytesFromServer += Int64(bytes.count)
            counters.chunksFromServer += 1
        }
        for other in others { cancel(chunk, at: other) }
        for (key, link) in links where superSeeder == nil {
            if !(link.theirs?.contains(chunk) ?? false) { send(.have(chunk: UInt32(chunk)), to: key) }
        }
    }

    private func cancel(_ chunk: Int, at source: PiecePicker<PeerKey>.Source) {
        switch source {
        case .server:
            serverTasks.removeValue(forKey: chunk)?.cancel()
        case .peer(let key):
            guard var link = links[key], let assembly = link.outstanding.removeValue(forKey: chunk) else { return }
            links[key] = link
            send(assembly.pendingBlocks(of: chunk).map { .cancel($0) }, to: key)
        }
    }

    func uploaded(_ block: BlockRequest, bytes: Int, to key: PeerKey, id: UInt64) {
        let t = now
        uploadMeter.add(bytes, at: t)
        counters.bytesUploaded += Int64(bytes)
        guard var link = links[key], link.id == id else { return }
        link.sendMeter.add(bytes, at: t)
        links[key] = link
        guard var seeder = superSeeder, let manifest else { return }
        let chunk = Int(block.chunk)
        guard Int(block.offset) + bytes == manifest.chunks[chunk].length else { return }
        seeder.sent(chunk, to: key)
        superSeeder = seeder
        if var theirs = link.theirs {
            _ = theirs.insert(chunk)
            link.theirs = theirs
            links[key] = link
        }
        if seeder.isActive {
            offerNext(to: key)
            // Peers that found nothing to be offered earlier (every unsent chunk was offered elsewhere) get offers.
            let window = superSeedWindow
            for other in links.keys where other != key && seeder.offers(for: other).count < window {
                offerNext(to: other)
            }
        } else {
            endSuperSeeding()
        }
    }

    /// Every chunk is in the swarm: from now on this seeder announces and serves everything like any other.
    private func endSuperSeeding() {
        guard superSeeder != nil else { return }
        superSeeder = nil
        logger.info("super-seeding done: every chunk was sent once or is in the swarm")
        for other in links.keys { announce(to: other) }
    }

    // MARK: Maintenance

    /// One maintenance round; returns whether the swarm is busy (fetching, or waiting for a manifest).
    private func tick() -> Bool {
        let t = now
        defer { if chokeDirty || t - lastChoke >= 10 { rechoke(at: t) } }
        if fetching, fatal == nil {
            checkOverdue(at: t)
            for key in links.keys {
                updateInterest(key)
                fill(key)
            }
            fillServer(at: t)
            return true
        }
        if manifest == nil, let assembly = manifestAssembly, t - assembly.startedAt > 5 {
            // That peer does not answer: ask another one.
            manifestAssembly = nil
            if let other = links.keys.first(where: { $0 != assembly.source }) { requestManifest(from: other) }
        } else if manifest == nil, manifestAssembly == nil, let any = links.keys.first {
            requestManifest(from: any)
        }
        return manifest == nil
    }

    private func checkOverdue(at t: Double) {
        guard var picker else { return }
        for (key, var link) in links {
            var queued = 0
            var overdue: [Int] = []
            for (chunk, assembly) in link.outstanding.sorted(by: { $0.value.requestedAt < $1.value.requestedAt }) {
                if link.pipeline.isOverdue(
                    bytes: assembly.length, queuedAhead: queued, requestedAt: assembly.requestedAt, now: t)
                {
                    overdue.append(chunk)
                }
                queued += assembly.length
            }
            guard !overdue.isEmpty else { continue }
            var cancels: [WireMessage] = []
            for chunk in overdue {
                let assembly = link.outstanding.removeValue(forKey: chunk)!
                picker.failed(chunk, from: .peer(key))
                cancels += assembly.pendingBlocks(of: chunk).map { .cancel($0) }
            }
            links[key] = link
            self.picker = picker
            send(cancels, to: key)
            picker = self.picker ?? picker
            logger.debug(
                "requests overdue, asked elsewhere", metadata: ["peer": "\(key)", "chunks": "\(overdue.count)"])
        }
        self.picker = picker
    }

    private func fillServer(at t: Double) {
        guard let webSeed, var picker, let manifest, t >= serverPausedUntil, !picker.isComplete else { return }
        if links.isEmpty, t - fetchStartedAt < options.serverGrace { return }
        var members = links.keys.map(\.bytes) + [identity.publicKey]
        members.sort { $0.lexicographicallyPrecedes($1) }
        // In a swarm of several fetchers, each asks the server for one chunk at a time: the server's uplink is shared
        // by all of them anyway, and fewer requests at once complete each first copy sooner, to be passed on.
        let cap = members.count >= 4 ? 1 : options.serverRequests
        let free = cap - serverTasks.count
        guard free > 0 else { return }
        let peersBusy = links.values.contains { !$0.outstanding.isEmpty }
        let idle = t - lastPeerDelivery > options.peerIdleBeforeServer
        let stripe = (index: members.firstIndex(of: identity.publicKey)!, of: members.count)
        let picks = picker.nextForServer(
            limit: free, stripe: stripe, reserve: peersBusy ? members.count * cap : 0,
            includeAvailable: !peersBusy && idle, using: &rng)
        self.picker = picker
        if !picks.isEmpty {
            logger.trace(
                "asking the server",
                metadata: [
                    "chunks": "\(picks)", "peers.busy": "\(peersBusy)", "peers.idle": "\(idle)",
                    "unavailable": "\(picker.availability(of: picks[0]) == 0)",
                    "super.seeders": "\(links.values.filter(\.superSeeding).count)",
                ])
        }
        for chunk in picks {
            let range = manifest.range(of: chunk)
            serverTasks[chunk] = Task { [weak self] in
                let result: Result<[UInt8], any Error>
                do {
                    result = .success(
                        try await webSeed.fetch(
                            offset: range.lowerBound, length: Int(range.upperBound - range.lowerBound)))
                } catch {
                    result = .failure(error)
                }
                await self?.serverFinished(chunk, result)
            }
        }
    }

    private func serverFinished(_ chunk: Int, _ result: Result<[UInt8], any Error>) {
        guard serverTasks.removeValue(forKey: chunk) != nil else { return }  // cancelled: the chunk came elsewhere
        switch result {
        case .success(let bytes):
            serverFailures = 0
            deliver(chunk, bytes: bytes, from: .server)
        case .failure(let error):
            picker?.failed(chunk, from: .server)
            if let seedError = error as? WebSeedError {
                switch seedError {
                case .changed: fatal = .changedOnServer
                case .refused(let why): fatal = .serverRefused(why)
                }
                return
            }
            if error is CancellationError { return }
            serverFailures += 1
            let pause = min(0.25 * Double(1 << min(serverFailures, 8)), 30)
            serverPausedUntil = now + pause
            logger.warning(
                "server request failed; retrying later",
                metadata: ["chunk": "\(chunk)", "error": "\(error)", "retry.in.s": "\(pause)"])
            if serverFailures >= 8, links.isEmpty { fatal = .server("\(error)") }
        }
    }

    /// Between the regular rechokes: unchokes interested peers into free upload slots, without reranking anyone.
    /// Reranking at every interest change made slots flap with the rate estimates, and every choke throws away the
    /// requests the peer has outstanding here.
    private func adjustChokes() {
        let capacity = superSeeder != nil ? Int.max : choker.slots + 1
        var used = links.values.filter { !$0.amChoking && $0.peerInterested }.count
        let waiting = links.filter { $0.value.amChoking && $0.value.peerInterested }.sorted {
            $0.value.connectedAt < $1.value.connectedAt
        }
        for (key, var link) in waiting where used < capacity {
            used += 1
            link.amChoking = false
            links[key] = link
            send(.unchoke, to: key)
        }
    }

    private func rechoke(at t: Double) {
        lastChoke = t
        chokeDirty = false
        let states = links.map { key, link in
            Choker<PeerKey>.PeerState(
                peer: key, interested: link.peerInterested, downloadRate: link.recvMeter.rate(at: t),
                uploadRate: link.sendMeter.rate(at: t), connectedAt: link.connectedAt)
        }
        // A super-seeder serves each peer only the one chunk it offered it, so its uplink is shared among all of them
        // anyway: choking some would only slow how fast distinct chunks enter the swarm.
        let unchoked =
            superSeeder != nil
            ? Set(states.filter(\.interested).map(\.peer))
            : choker.unchoked(peers: states, seeding: !fetching, now: t, using: &rng)
        for (key, var link) in links {
            let choke = !unchoked.contains(key)
            guard choke != link.amChoking else { continue }
            link.amChoking = choke
            links[key] = link
            send(choke ? .choke : .unchoke, to: key)
        }
    }
}

/// Why a swarm fetch stopped.
public enum SwarmError: Error, Sendable, CustomStringConvertible {
    /// No peer gave a manifest that matches the content root in time.
    case noManifest
    /// The server's file has a new etag: the version being fetched is not the server's any more.
    case changedOnServer
    /// The server refused the user.
    case serverRefused(String)
    /// The server kept failing and no peer is left.
    case server(String)
    /// The server's bytes do not match the manifest that peers and the sidecar describe.
    case serverMismatch(chunk: Int)
    /// Writing to the local disk failed.
    case storage(ChunkStoreError)
    /// No peer has been connected for a while and the server may not be asked (`--no-server`, or an upload in
    /// progress): nothing can make progress.
    case noSources

    public var description: String {
        switch self {
        case .noManifest: "no peer gave the file's manifest in time"
        case .changedOnServer: "the file changed on the server during the download"
        case .serverRefused(let why): "the server refused: \(why)"
        case .server(let why): "the server keeps failing: \(why)"
        case .serverMismatch(let chunk):
            "chunk \(chunk) from the server does not match the file's content root (a wrong sidecar?)"
        case .storage(let error): "\(error)"
        case .noSources: "no peer has been reachable for a while and the server may not be used"
        }
    }
}

/// Why a connection was not admitted.
struct Refusal: Error {
    let reason: GoodbyeReason
}

/// A peer's device key, as the engine's name for it.
struct PeerKey: Hashable, Sendable, CustomStringConvertible {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    var description: String { DeviceIdentity.fingerprint(of: bytes) }
}

/// A chunk being received from one peer, block by block.
struct Assembly {
    var requestedAt: Double
    var length: Int
    var pending: Set<UInt32>
    var buffer: [UInt8] = []

    /// The length of the block at `offset` (the last block of a chunk may be short).
    func blockLength(at offset: Int) -> Int { min(Int(WireLimits.maxBlockLength), length - offset) }

    /// The requests of the blocks not yet received (to cancel them).
    func pendingBlocks(of chunk: Int) -> [BlockRequest] {
        pending.map { BlockRequest(chunk: UInt32(chunk), offset: $0, length: UInt32(blockLength(at: Int($0)))) }
    }
}

/// A manifest being received page by page from one peer.
struct ManifestAssembly {
    var source: PeerKey
    var startedAt: Double
    var fileSize: UInt64?
    var chunkCount: UInt32?
    var pages: [UInt32: [ManifestEntry]] = [:]
}

/// One connected peer, as the swarm sees it.
struct PeerLink {
    let id: UInt64
    let connection: PeerConnection
    let initiatedByUs: Bool
    let connectedAt: Double
    /// The peer super-seeds: it has every chunk but announces them one at a time.
    let superSeeding: Bool
    var listenAddress: PeerAddress?
    let requests: AsyncStream<UploadRequest>.Continuation
    var pipeline: RequestPipeline
    var theirs: ChunkSet?
    var rawBitfield: Bitfield?
    /// Haves that arrived with the manifest known: applied (and emptied) at once.
    var rawHaves: Set<UInt32> = []
    /// Haves that arrived before the manifest, within `Swarm.chunkCountBound`.
    var earlyHaves: ChunkSet?
    var sentBitfield = false
    var amChoking = true
    var amInterested = false
    var peerChoking = true
    var peerInterested = false
    var outstanding: [Int: Assembly] = [:]
    /// What the peer asked for that the upload loop has not taken yet.
    var uploads = UploadQueue()
    var cache: (chunk: Int, bytes: [UInt8])?
    var recvMeter = RateMeter()
    var sendMeter = RateMeter()

    init(
        id: UInt64, connection: PeerConnection, initiatedByUs: Bool, connectedAt: Double, superSeeding: Bool,
        listenAddress: PeerAddress?, requests: AsyncStream<UploadRequest>.Continuation, pipeline: RequestPipeline
    ) {
        self.id = id
        self.connection = connection
        self.initiatedByUs = initiatedByUs
        self.connectedAt = connectedAt
        self.superSeeding = superSeeding
        self.listenAddress = listenAddress
        self.requests = requests
        self.pipeline = pipeline
    }
}

extension Manifest {
    /// The mean chunk length (at least 1).
    var averageChunkLength: Int { chunks.isEmpty ? 1 : max(1, Int(size / Int64(chunks.count))) }
}

extension PeerAddress {
    /// The IP bytes of a socket address (IPv4 or IPv6), or nil for other kinds.
    static func ipBytes(of address: SocketAddress) -> [UInt8]? {
        switch address {
        case .v4(let v4):
            var raw = v4.address.sin_addr.s_addr
            return withUnsafeBytes(of: &raw) { Array($0) }
        case .v6(let v6):
            var raw = v6.address.sin6_addr
            return withUnsafeBytes(of: &raw) { Array($0) }
        default:
            return nil
        }
    }

    /// `host:port` (IPv6 in brackets).
    public var hostAndPort: String { ip.count == 4 ? "\(host):\(port)" : "[\(host)]:\(port)" }

    /// The IP address as text.
    public var host: String {
        if ip.count == 4 { return ip.map(String.init).joined(separator: ".") }
        var groups: [String] = []
        for i in stride(from: 0, to: 16, by: 2) {
            groups.append(String(UInt16(ip[i]) << 8 | UInt16(ip[i + 1]), radix: 16))
        }
        return groups.joined(separator: ":")
    }

    /// Parses `a.b.c.d:port` or `[v6]:port`.
    public init?(hostAndPort text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            return nil
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard let address = try? SocketAddress(ipAddress: host, port: Int(port)), let ip = Self.ipBytes(of: address)
        else { return nil }
        self.init(ip: ip, port: port)
    }
}
