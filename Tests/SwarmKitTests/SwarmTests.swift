import ChunkStore
import Foundation
import Logging
import Synchronization
import Testing

@testable import SwarmKit

/// The `Swarm` actor over real loopback connections, with real chunk stores, in one process.
@Suite(.timeLimit(.minutes(2))) struct SwarmTests {
    static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    static let small = ChunkingParameters(minSize: 16384, avgSize: 65536, maxSize: 262_144, normalization: 1)

    /// A folder with a random file indexed in its own store.
    struct Origin {
        let directory: String
        let path: String
        let bytes: [UInt8]
        let store: ChunkStore
        let manifest: Manifest
        let root: Hash256

        init(size: Int, chunking: ChunkingParameters = SwarmTests.small) throws {
            directory =
                FileManager.default.temporaryDirectory.appendingPathComponent("harp-swarm-\(UUID().uuidString)")
                .path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            var generator = SystemRandomNumberGenerator()
            bytes = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
            path = directory + "/origin.bin"
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            store = try ChunkStore(path: directory + "/origin.sqlite")
            let outcome = try store.index(file: path, parameters: chunking)
            root = outcome.root
            manifest = try #require(try store.manifest(root: root))
        }

        func newStore(_ name: String) throws -> ChunkStore { try ChunkStore(path: directory + "/\(name).sqlite") }
    }

    /// A swarm that accepts connections on a loopback port.
    struct Member {
        let swarm: Swarm
        let identity: DeviceIdentity
        let listener: PeerListener
        let port: Int
        let keys: SwarmKeys

        init(
            root: Hash256, size: Int64, chunking: ChunkingParameters = SwarmTests.small,
            options: Swarm.Options = Swarm.Options()
        ) async throws {
            identity = .generate()
            keys = SwarmKeys(contentRoot: root.bytes, salt: Array(repeating: 7, count: 32))
            swarm = Swarm(
                root: root, chunking: chunking, expectedSize: size, identity: identity, options: options,
                logger: SwarmTests.quiet)
            var configuration = PeerConfiguration(identity: identity, swarmKey: keys.swarmKey)
            configuration.logger = SwarmTests.quiet
            if options.superSeed { configuration.capabilities = Hello.Capability.superSeeding }
            listener = try await PeerListener.bind(host: "127.0.0.1", port: 0, configuration: configuration)
            port = try #require(listener.localAddress?.port)
            let swarm = self.swarm
            let listener = self.listener
            Task { try? await listener.run { await swarm.run($0, initiatedByUs: false, address: nil) } }
            await swarm.start()
        }

        /// Dials `other` and serves the connection in the background.
        func connect(to other: Member) async throws {
            var configuration = PeerConfiguration(identity: identity, swarmKey: keys.swarmKey)
            configuration.logger = SwarmTests.quiet
            configuration.listenPort = UInt16(port)
            let connection = try await PeerConnection.connect(
                host: "127.0.0.1", port: other.port, configuration: configuration)
            let swarm = self.swarm
            Task {
                await swarm.run(
                    connection, initiatedByUs: true, address: PeerAddress(hostAndPort: "127.0.0.1:\(other.port)"))
            }
        }

        func stop() async {
            try? await listener.close()
            await swarm.stop()
        }
    }

    /// A web seed over the origin's bytes, with optional faults.
    final class FakeWebSeed: WebSeed {
        let bytes: [UInt8]
        let corruptOffset: Int64?
        let changed: Bool
        let served = Atomic<Int>(0)

        init(bytes: [UInt8], corruptOffset: Int64? = nil, changed: Bool = false) {
            self.bytes = bytes
            self.corruptOffset = corruptOffset
            self.changed = changed
        }

        func fetch(offset: Int64, length: Int) async throws -> [UInt8] {
            if changed { throw WebSeedError.changed }
            var slice = Array(bytes[Int(offset)..<Int(offset) + length])
            if let corruptOffset, offset == corruptOffset { slice[0] ^= 1 }
            served.add(length, ordering: .relaxed)
            return slice
        }
    }

    static func target(
        _ store: ChunkStore, _ root: Hash256, _ destination: String, webSeed: (any WebSeed)?
    )
        -> Swarm.FetchTarget
    {
        Swarm.FetchTarget(
            openSink: { try store.openDownload(manifest: $0, root: root, destination: destination) }, webSeed: webSeed)
    }

    @Test func fetchesTheManifestAndEveryChunkFromTwoSeeders() async throws {
        let origin = try Origin(size: 3 << 20)
        // Each seeder sends at most 2 MiB/s, so neither can deliver the whole file before the other is connected.
        var paced = Swarm.Options()
        paced.uploadLimit = 2 << 20
        let seeders = [
            try await Member(root: origin.root, size: origin.manifest.size, options: paced),
            try await Member(root: origin.root, size: origin.manifest.size, options: paced),
        ]
        for seeder in seeders { try await seeder.swarm.seed(manifest: origin.manifest, store: origin.store) }
        let fetcher = try await Member(root: origin.root, size: origin.manifest.size)
        for seeder in seeders { try await fetcher.connect(to: seeder) }
        let store = try origin.newStore("fetcher")
        let destination = origin.directory + "/copy.bin"
        let opened = Mutex<DownloadSink?>(nil)
        let manifest = try await fetcher.swarm.fetch(
            Swarm.FetchTarget(
                openSink: { manifest in
                    let sink = try store.openDownload(manifest: manifest, root: origin.root, destination: destination)
                    opened.withLock { $0 = sink }
                    return sink
                },
                webSeed: nil))
        #expect(manifest == origin.manifest)
        let sink = try #require(opened.withLock { $0 })
        try sink.finish()
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: destination))) == origin.bytes)
        let snapshot = await fetcher.swarm.snapshot
        #expect(snapshot.bytesFromPeers == Int64(origin.bytes.count))
        #expect(snapshot.bytesFromServer == 0)
        #expect(snapshot.peersUsed == 2, "both seeders should have sent chunks")
        #expect(snapshot.complete)
        for member in seeders + [fetcher] { await member.stop() }
    }

    /// Chunks of several blocks (the default chunking, about 1 MiB): the seeder's engine counts every block it sent.
    /// Only the last block may still be on its way to the engine when the fetch ends.
    @Test func aSeederCountsEveryBlockItSends() async throws {
        let origin = try Origin(size: 6 << 20, chunking: .default)
        #expect(origin.manifest.chunks.contains { $0.length > Int(WireLimits.maxBlockLength) })
        let seeder = try await Member(root: origin.root, size: origin.manifest.size, chunking: .default)
        try await seeder.swarm.seed(manifest: origin.manifest, store: origin.store)
        let fetcher = try await Member(root: origin.root, size: origin.manifest.size, chunking: .default)
        try await fetcher.connect(to: seeder)
        let store = try origin.newStore("fetcher")
        _ = try await fetcher.swarm.fetch(Self.target(store, origin.root, origin.directory + "/copy.bin", webSeed: nil))
        let fetched = await fetcher.swarm.snapshot.bytesFromPeers
        #expect(fetched == Int64(origin.bytes.count))
        let uploaded = await seeder.swarm.snapshot.bytesUploaded
        #expect(uploaded >= fetched - Int64(WireLimits.maxBlockLength))
        for member in [seeder, fetcher] { await member.stop() }
    }

    @Test func chunksInTheLocalStoreAreCopiedNotFetched() async throws {
        let origin = try Origin(size: 1 << 20)
        let fetcher = try await Member(root: origin.root, size: origin.manifest.size)
        // The same store already holds the origin file: every chunk is local.
        let destination = origin.directory + "/copy.bin"
        _ = try await fetcher.swarm.fetch(
            Self.target(origin.store, origin.root, destination, webSeed: nil), knownManifest: origin.manifest)
        let snapshot = await fetcher.swarm.snapshot
        #expect(snapshot.bytesFromLocal == Int64(origin.bytes.count))
        #expect(snapshot.bytesFromPeers == 0 && snapshot.bytesFromServer == 0)
        await fetcher.stop()
    }

    @Test func theServerAloneFillsInWhenNoPeerIsThere() async throws {
        let origin = try Origin(size: 2 << 20)
        var options = Swarm.Options()
        options.serverGrace = 0
        let fetcher = try await Member(root: origin.root, size: origin.manifest.size, options: options)
        let seed = FakeWebSeed(bytes: origin.bytes)
        let store = try origin.newStore("fetcher")
        _ = try await fetcher.swarm.fetch(
            Self.target(store, origin.root, origin.directory + "/copy.bin", webSeed: seed),
            knownManifest: origin.manifest)
        #expect(seed.served.load(ordering: .relaxed) == origin.bytes.count)
        #expect(await fetcher.swarm.snapshot.bytesFromServer == Int64(origin.bytes.count))
        await fetcher.stop()
    }

    @Test func serverBytesThatDoNotMatchAndAChangedEtagStopTheFetch() async throws {
        let origin = try Origin(size: 1 << 20)
        var options = Swarm.Options()
        options.serverGrace = 0
        let liar = try await Member(root: origin.root, size: origin.manifest.size, options: options)
        await #expect(throws: SwarmError.self) {
            _ = try await liar.swarm.fetch(
                Self.target(
                    try origin.newStore("a"), origin.root, origin.directory + "/a.bin",
                    webSeed: FakeWebSeed(bytes: origin.bytes, corruptOffset: origin.manifest.offsets[1])),
                knownManifest: origin.manifest)
        }
        #expect(await liar.swarm.snapshot.badChunks == 1)
        await liar.stop()

        let changed = try await Member(root: origin.root, size: origin.manifest.size, options: options)
        do {
            _ = try await changed.swarm.fetch(
                Self.target(
                    try origin.newStore("b"), origin.root, origin.directory + "/b.bin",
                    webSeed: FakeWebSeed(bytes: origin.bytes, changed: true)),
                knownManifest: origin.manifest)
            Issue.record("a changed file must stop the fetch")
        } catch SwarmError.changedOnServer {
        }
        await changed.stop()
    }

    @Test func aPeerThatSendsBadChunksIsDroppedThenBanned() async throws {
        let origin = try Origin(size: 2 << 20)
        var lying = Swarm.Options()
        lying.corruptEveryNthUpload = 1
        let liar = try await Member(root: origin.root, size: origin.manifest.size, options: lying)
        try await liar.swarm.seed(manifest: origin.manifest, store: origin.store)
        let fetcher = try await Member(root: origin.root, size: origin.manifest.size)
        let store = try origin.newStore("fetcher")
        let fetch = Task {
            try await fetcher.swarm.fetch(
                Self.target(store, origin.root, origin.directory + "/copy.bin", webSeed: nil),
                knownManifest: origin.manifest)
        }
        // Each connection ends at the first bad chunk (a fault; chunks already on their way to the disk may fail too,
        // without another fault); the second fault bans the liar for the session.
        for attempt in 1...2 {
            try await fetcher.connect(to: liar)
            try await waitFor("fault \(attempt) of the liar") {
                await fetcher.swarm.snapshot.peerFaults >= attempt
            }
            try await waitFor("the liar's connection \(attempt) to be dropped") {
                await !fetcher.swarm.isConnected(to: liar.identity.publicKey)
            }
        }
        #expect(await fetcher.swarm.isBanned(liar.identity.publicKey))
        try await fetcher.connect(to: liar)
        // Wait for the refusal itself, not for a while: the swarm counts it when it turns the connection away.
        try await waitFor("the banned liar's connection to be refused", seconds: 30) {
            await fetcher.swarm.snapshot.bannedRefused > 0
        }
        #expect(await fetcher.swarm.snapshot.bannedRefused == 1, "a banned peer is refused")
        #expect(!(await fetcher.swarm.isConnected(to: liar.identity.publicKey)))
        #expect(await fetcher.swarm.snapshot.bytesFromPeers == 0)

        // An honest seeder finishes the job.
        let honest = try await Member(root: origin.root, size: origin.manifest.size)
        try await honest.swarm.seed(manifest: origin.manifest, store: origin.store)
        try await fetcher.connect(to: honest)
        let manifest = try await fetch.value
        #expect(manifest == origin.manifest)
        #expect(await fetcher.swarm.snapshot.bytesFromPeers == Int64(origin.bytes.count))
        for member in [liar, fetcher, honest] { await member.stop() }
    }

    @Test func membersLearnOfEachOtherThroughPeerExchange() async throws {
        let origin = try Origin(size: 256 << 10)
        let hub = try await Member(root: origin.root, size: origin.manifest.size)
        try await hub.swarm.seed(manifest: origin.manifest, store: origin.store)
        let first = try await Member(root: origin.root, size: origin.manifest.size)
        let second = try await Member(root: origin.root, size: origin.manifest.size)
        try await first.connect(to: hub)
        try await waitFor("the hub to connect the first member") {
            await hub.swarm.isConnected(to: first.identity.publicKey)
        }
        try await second.connect(to: hub)
        var iterator = second.swarm.discoveries.makeAsyncIterator()
        let learnt = await iterator.next()
        #expect(learnt == PeerAddress(hostAndPort: "127.0.0.1:\(first.port)"))
        for member in [hub, first, second] { await member.stop() }
    }

    @Test func anOriginSuperSeedsOnlyWhatTheSwarmLacks() async throws {
        let origin = try Origin(size: 1 << 20)
        var options = Swarm.Options()
        options.superSeed = true
        // Alone in its swarm, an origin super-seeds.
        let alone = try await Member(root: origin.root, size: origin.manifest.size, options: options)
        try await alone.swarm.seed(manifest: origin.manifest, store: origin.store)
        #expect(await alone.swarm.snapshot.superSeeding)
        // Connected to a complete seeder, every chunk is in the swarm already: super-seeding ends as soon as that
        // seeder's bitfield is known (before, it went on for good and served one chunk at a time).
        let seeder = try await Member(root: origin.root, size: origin.manifest.size)
        try await seeder.swarm.seed(manifest: origin.manifest, store: origin.store)
        let second = try await Member(root: origin.root, size: origin.manifest.size, options: options)
        try await second.connect(to: seeder)
        try await second.swarm.seed(manifest: origin.manifest, store: origin.store)
        try await waitFor("super-seeding to end once the complete seeder's bitfield is known", seconds: 20) {
            await !second.swarm.snapshot.superSeeding
        }
        #expect(await alone.swarm.snapshot.superSeeding)
        for member in [alone, seeder, second] { await member.stop() }
    }
}
