import ChunkStore
import Foundation
import Logging
import NIOCore
import Testing

@testable import SwarmKit

/// A peer that knows K attacks a seeder (or a fetcher) through the real handshake: flooding, never reading, lying,
/// stalling. Each time the attacked side stays up, drops the attacker and counts it, and a measured bound holds (the
/// bytes queued for the attacker, the tables kept for it).
@Suite(.serialized, .timeLimit(.minutes(3))) struct HostilePeerTests {
    /// K of the test swarm: the swarm itself never sees it, only the connections' configurations.
    static let swarmKey = SecureBytes(copying: (0..<32).map { UInt8($0 ^ 0x5C) })
    /// The default `PeerConfiguration.sendBacklogLimit`.
    static let backlogLimit = PeerConfiguration(identity: .generate(), swarmKey: swarmKey).sendBacklogLimit

    /// A swarm (seeding the origin, or still without a manifest) behind a loopback listener.
    struct Target {
        let origin: SwarmTests.Origin
        let swarm: Swarm
        let listener: PeerListener
        let port: Int

        init(
            size: Int = 1 << 20, seeding: Bool = true, options: Swarm.Options = Swarm.Options(),
            configure: (inout PeerConfiguration) -> Void = { _ in }
        ) async throws {
            origin = try SwarmTests.Origin(size: size)
            let identity = DeviceIdentity.generate()
            swarm = Swarm(
                root: origin.root, chunking: SwarmTests.small, expectedSize: origin.manifest.size,
                identity: identity, options: options, logger: SwarmTests.quiet)
            var configuration = PeerConfiguration(identity: identity, swarmKey: HostilePeerTests.swarmKey)
            configuration.logger = SwarmTests.quiet
            configure(&configuration)
            listener = try await PeerListener.bind(host: "127.0.0.1", port: 0, configuration: configuration)
            port = try #require(listener.localAddress?.port)
            let swarm = self.swarm
            let listener = self.listener
            Task { try? await listener.run { await swarm.run($0, initiatedByUs: false, address: nil) } }
            await swarm.start()
            if seeding { try await swarm.seed(manifest: origin.manifest, store: origin.store) }
        }

        func attacker() async throws -> HostilePeer {
            try await HostilePeer.connect(port: port, swarmKey: HostilePeerTests.swarmKey)
        }

        /// The largest backlog of `peer`'s channel on this side, sampled until `body` returns.
        func sampleBacklog<T>(of peer: HostilePeer, during body: () async throws -> T) async rethrows -> (T, Int) {
            let swarm = self.swarm
            let key = peer.identity.publicKey
            let sampler = Task {
                var peak = 0
                while !Task.isCancelled {
                    peak = max(peak, await swarm.channelBacklog(of: key) ?? 0)
                    try? await Task.sleep(for: .milliseconds(5))
                }
                return peak
            }
            let result = try await body()
            sampler.cancel()
            return (result, await sampler.value)
        }

        /// An honest member fetches the whole file from this seeder.
        func servesAnHonestFetcher() async throws -> Bool {
            let identity = DeviceIdentity.generate()
            let fetcher = Swarm(
                root: origin.root, chunking: SwarmTests.small, expectedSize: origin.manifest.size, identity: identity,
                logger: SwarmTests.quiet)
            var configuration = PeerConfiguration(identity: identity, swarmKey: HostilePeerTests.swarmKey)
            configuration.logger = SwarmTests.quiet
            let connection = try await PeerConnection.connect(
                host: "127.0.0.1", port: port, configuration: configuration)
            Task { await fetcher.run(connection, initiatedByUs: true, address: nil) }
            let store = try origin.newStore("honest-\(UUID().uuidString)")
            let destination = origin.directory + "/honest-\(UUID().uuidString).bin"
            let manifest = try await fetcher.fetch(SwarmTests.target(store, origin.root, destination, webSeed: nil))
            let complete = await fetcher.snapshot.complete
            await fetcher.stop()
            return manifest == origin.manifest && complete
        }

        func stop() async {
            await swarm.stop()
            try? await listener.close()
        }
    }

    static func deadline(_ seconds: Int) -> ContinuousClock.Instant { .now + .seconds(seconds) }

    /// Says interested and reads until the target unchokes it.
    static func getUnchoked(_ attacker: HostilePeer) async throws {
        await attacker.flood([.interested])
        let unchoke = try await attacker.read { $0 == .unchoke }
        try #require(unchoke != nil, "the seeder should unchoke an interested peer")
    }

    // MARK: (a) manifest requests, never reading

    @Test func aPeerThatFloodsManifestRequestsAndNeverReadsIsDropped() async throws {
        let target = try await Target()
        let attacker = try await target.attacker()
        let (closed, peak) = await target.sampleBacklog(of: attacker) {
            await attacker.flood(until: Self.deadline(20)) { _ in .manifestRequest(page: 0) }
        }
        #expect(closed, "the seeder should close the connection of a peer that floods and never reads")
        let snapshot = await target.swarm.snapshot
        #expect(snapshot.peerFaults == 1)
        #expect(snapshot.peersDropped == 1)
        #expect(snapshot.peers == 0)
        #expect(peak <= Self.backlogLimit, "the attacker's channel held \(peak) bytes")
        #expect(snapshot.peakPeerBacklog <= Self.backlogLimit)
        #expect(try await target.servesAnHonestFetcher(), "the seeder should still serve honest peers")
        await attacker.close()
        await target.stop()
    }

    @Test func aRequestForAManifestPageThatDoesNotExistIsAFault() async throws {
        let target = try await Target()
        let attacker = try await target.attacker()
        await attacker.flood([.manifestRequest(page: 0)])
        let page = try await attacker.read {
            if case .manifestPage = $0 { return true }
            return false
        }
        guard case .manifestPage(let first) = page else { throw CancellationError() }
        #expect(first.entries.count == target.origin.manifest.chunks.count)
        await attacker.flood([.manifestRequest(page: first.pageCount)])
        try await waitFor("the peer's fault to be counted") { await target.swarm.snapshot.peerFaults > 0 }
        #expect(await target.swarm.snapshot.peerFaults == 1)
        #expect(await attacker.waitClosed(until: Self.deadline(10)))
        await target.stop()
    }

    // MARK: (b) piece requests, never reading

    @Test func aPeerThatFloodsRequestsAndNeverReadsIsDroppedAndClosed() async throws {
        let target = try await Target()
        let attacker = try await target.attacker()
        try await Self.getUnchoked(attacker)
        let chunks = target.origin.manifest.chunks
        let (closed, peak) = await target.sampleBacklog(of: attacker) {
            await attacker.flood(until: Self.deadline(20)) { i in
                let chunk = i % chunks.count
                let length = min(Int(WireLimits.maxBlockLength), chunks[chunk].length)
                return .request(BlockRequest(chunk: UInt32(chunk), offset: 0, length: UInt32(length)))
            }
        }
        #expect(closed, "the seeder should close the connection even though the peer does not read its goodbye")
        let snapshot = await target.swarm.snapshot
        #expect(snapshot.peerFaults == 1)
        #expect(snapshot.peers == 0)
        #expect(peak <= Self.backlogLimit, "the attacker's channel held \(peak) bytes")
        // Pieces wait at the queue limit: at most 512 KiB plus one piece message.
        #expect(snapshot.peakPeerBacklog <= 512 * 1024 + Int(WireLimits.maxBlockLength) + 14)
        #expect(try await target.servesAnHonestFetcher(), "the seeder should still serve honest peers")
        await attacker.close()
        await target.stop()
    }

    // MARK: (c) have, cancel and bitfield out of range

    @Test func cancelsAreKeptOnlyForRequestsThatWaitAndAnOutOfRangeHaveIsAFault() async throws {
        let target = try await Target()
        let attacker = try await target.attacker()
        try await Self.getUnchoked(attacker)
        let chunks = target.origin.manifest.chunks
        let requests: [WireMessage] = (0..<1500).map { i in
            let chunk = i % chunks.count
            let length = min(Int(WireLimits.maxBlockLength), chunks[chunk].length)
            return .request(BlockRequest(chunk: UInt32(chunk), offset: 0, length: UInt32(length)))
        }
        await attacker.flood(requests)
        // 40,000 cancels of blocks never asked for, and the same waiting block cancelled 1,000 times.
        let never = (0..<40_000).map {
            WireMessage.cancel(BlockRequest(chunk: UInt32(1_000_000 + $0), offset: 0, length: 1))
        }
        guard case .request(let waiting) = requests[requests.count - 1] else { preconditionFailure() }
        await attacker.flood(never + Array(repeating: .cancel(waiting), count: 1000))
        // Not interested is processed after every cancel before it: once it shows, they have all been seen.
        await attacker.flood([.notInterested])
        try await waitFor("the not-interested after the cancels") { await target.swarm.peersInterested == 0 }
        let book = try #require(await target.swarm.bookkeeping(of: attacker.identity.publicKey))
        #expect(book.queuedCancels <= book.queuedBlocks, "\(book)")
        #expect(book.queuedCancels <= requests.count / chunks.count + 1, "\(book)")
        #expect(book.queuedBlocks <= UploadQueue.maxBlocks)
        // The upload loop's read-ahead list: a run per request here (each asks for another chunk than the one
        // before), so as long as the requests that wait, never longer.
        #expect(book.queuedChunkRuns > 0 && book.queuedChunkRuns <= book.queuedBlocks, "\(book)")
        // A have past the last chunk is a fault.
        await attacker.flood([.have(chunk: 0xFFFF_FFF0)])
        try await waitFor("the peer's fault to be counted") { await target.swarm.snapshot.peerFaults > 0 }
        #expect(await target.swarm.snapshot.peerFaults == 1)
        #expect(await attacker.waitClosed(until: Self.deadline(10)))
        await attacker.close()
        await target.stop()
    }

    @Test func aBitfieldOfTheWrongSizeIsAFault() async throws {
        let target = try await Target()
        let attacker = try await target.attacker()
        await attacker.flood([.bitfield(Bitfield(chunkCount: WireLimits.maxBitfieldChunks))])
        try await waitFor("the peer's fault to be counted") { await target.swarm.snapshot.peerFaults > 0 }
        #expect(await target.swarm.snapshot.peerFaults == 1)
        #expect(await attacker.waitClosed(until: Self.deadline(10)))
        await target.stop()
    }

    @Test func beforeTheManifestHavesAreBoundedByTheFileSize() async throws {
        // A fetcher that has no manifest yet keeps haves in a bit set as large as the file's size allows.
        let target = try await Target(seeding: false)
        let attacker = try await target.attacker()
        let bound = await target.swarm.chunkCountBound
        #expect(bound <= Int(target.origin.manifest.size) / SwarmTests.small.minSize + 1)
        await attacker.flood((0..<UInt32(bound)).map { .have(chunk: $0) })
        await attacker.flood([.interested])
        try await waitFor("the interested after the haves") { await target.swarm.peersInterested == 1 }
        #expect(await target.swarm.bookkeeping(of: attacker.identity.publicKey)?.earlyHaves == bound)
        // One past the bound: the peer is dropped before anything is kept for it.
        let closed = await attacker.flood(until: Self.deadline(10)) { i in .have(chunk: UInt32(bound + i)) }
        #expect(closed)
        #expect(await target.swarm.snapshot.peerFaults == 1)
        await target.stop()
    }

    // MARK: (d) lies

    @Test func aManifestPageThatClaimsMoreChunksThanTheSizeAllowsIsAFault() async throws {
        let target = try await Target(seeding: false)
        let attacker = try await target.attacker()
        // The fetcher asks its first peer for page 0 of the manifest.
        let request = try await attacker.read { $0 == .manifestRequest(page: 0) }
        try #require(request != nil)
        let perPage = WireLimits.maxManifestPageEntries
        let claimed = Manifest.maxChunkCount
        let entries = (0..<perPage).map { _ in ManifestEntry(hash: [UInt8](repeating: 7, count: 32), length: 1) }
        await attacker.flood([
            .manifestPage(
                ManifestPage(
                    page: 0, pageCount: UInt32(claimed / perPage), fileSize: UInt64(target.origin.manifest.size),
                    chunkCount: UInt32(claimed), entries: entries))
        ])
        try await waitFor("the peer's fault to be counted") { await target.swarm.snapshot.peerFaults > 0 }
        #expect(await target.swarm.snapshot.peerFaults == 1)
        #expect(await !target.swarm.isAssemblingManifest)
        #expect(await attacker.waitClosed(until: Self.deadline(10)))
        await target.stop()
    }

    // MARK: (e) stalls

    @Test func aPeerThatStallsMidFrameIsDroppedAtTheIdleTimeout() async throws {
        let target = try await Target { $0.idleTimeout = .seconds(1) }
        let attacker = try await target.attacker()
        try await waitFor("the attacker to be counted as a peer") { await target.swarm.snapshot.peers == 1 }
        // A frame header for 1,000 bytes, then 10 of them, then nothing.
        try await attacker.writeRaw([0x03, 0xE8] + [UInt8](repeating: 0xAB, count: 10))
        var goodbye: GoodbyeReason?
        while let message = try? await attacker.next() {
            if case .goodbye(let reason) = message { goodbye = reason }
        }
        #expect(goodbye == .idleTimeout)
        #expect(attacker.isClosed)
        // The swarm learns it when the connection's inbound sequence ends, just after the peer sees the close.
        try await waitFor("the swarm to drop the peer") { await target.swarm.snapshot.peersDropped > 0 }
        #expect(await target.swarm.snapshot.peersDropped == 1)
        #expect(await target.swarm.snapshot.peers == 0)
        #expect(try await target.servesAnHonestFetcher())
        await target.stop()
    }
}
