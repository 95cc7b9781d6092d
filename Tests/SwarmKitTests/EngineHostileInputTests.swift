import ChunkStore
import Testing

@testable import SwarmKit

/// What a peer can make the engine keep: the shell copies a piece only where the engine says `keepBlock`, so every
/// assembly buffer is bounded by what this side requested (`RequestPipeline` depth × chunk length), never by what
/// arrives.
@Suite("Engine: hostile pieces")
struct EngineHostileInputTests {
    /// An engine fetching `chunkCount` chunks of `chunkLength` bytes, with one peer connected.
    static func fetchingEngine(
        chunkCount: Int = 8, chunkLength: Int = 1 << 20
    ) throws -> (SwarmEngine, LinkID, Manifest) {
        let refs = (0..<chunkCount).map { index in
            ChunkRef(
                hash: Hash256(bytes: [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: 32))!,
                length: chunkLength)
        }
        let manifest = try Manifest(parameters: .default, chunks: refs)
        var engine = SwarmEngine(
            root: manifest.root, chunking: .default, expectedSize: manifest.size,
            localKey: [1] + [UInt8](repeating: 0, count: 31),
            options: SwarmEngine.Options(), seed: 1)
        _ = engine.handle(.fetch(manifest: manifest, server: false), at: 0)
        _ = engine.handle(.opened(have: ChunkSet(count: chunkCount), localBytes: 0), at: 0)
        let link = LinkID(1)
        _ = engine.handle(
            .connected(
                ConnectedPeer(
                    link: link, deviceKey: [2] + [UInt8](repeating: 0, count: 31), initiatedByUs: true,
                    superSeeding: false, listenAddress: nil)), at: 0)
        return (engine, link, manifest)
    }

    @Test func piecesNobodyAskedForAreCountedAsWasteAndNeverKept() throws {
        var (engine, link, _) = try Self.fetchingEngine()
        var kept = 0
        for chunk in 0..<8 {
            for offset in stride(from: 0, to: 1 << 20, by: 128 << 10) {
                let actions = engine.handle(
                    .received(link, .piece(chunk: UInt32(chunk), offset: UInt32(offset), length: 128 << 10)), at: 1)
                kept += actions.filter { if case .keepBlock = $0 { true } else { false } }.count
            }
        }
        #expect(kept == 0)
        #expect(engine.snapshot.bytesWasted == 8 << 20)
        #expect(engine.snapshot.peers == 1)
    }

    @Test func aRequestedBlockOfTheWrongLengthIsAFault() throws {
        var (engine, link, _) = try Self.fetchingEngine()
        _ = engine.handle(.received(link, .bitfield(ChunkSet(count: 8, full: true).bitfield)), at: 0)
        let unchoke = engine.handle(.received(link, .unchoke), at: 0)
        let requested = unchoke.flatMap { action -> [BlockRequest] in
            guard case .send(link, let messages) = action else { return [] }
            return messages.compactMap { if case .request(let block) = $0 { block } else { nil } }
        }
        let block = try #require(requested.first)
        let actions = engine.handle(
            .received(link, .piece(chunk: block.chunk, offset: block.offset, length: Int(block.length) + 1)), at: 1)
        #expect(!actions.contains { if case .keepBlock = $0 { true } else { false } })
        #expect(actions.contains(.close(link, .malformedMessage)))
        #expect(engine.snapshot.peerFaults == 1)
    }
}

/// The server's grace at the start of a fetch (`SwarmEngine.Options.serverGrace`).
@Suite("Engine: the server's grace")
struct EngineServerGraceTests {
    static func serverRanges(_ actions: [EngineAction]) -> Int {
        actions.filter { if case .fetchRange = $0 { true } else { false } }.count
    }

    /// A fetcher connected only to peers that have nothing yet (fetchers that started with it) waits the grace for a
    /// peer with chunks before it asks the server; a peer that announces chunks ends the wait at once.
    @Test func peersWithNothingDoNotEndTheGrace() throws {
        let refs = (0..<8).map { index in
            ChunkRef(hash: Hash256(bytes: [UInt8](repeating: UInt8(index), count: 32))!, length: 1 << 20)
        }
        let manifest = try Manifest(parameters: .default, chunks: refs)
        var engine = SwarmEngine(
            root: manifest.root, chunking: .default, expectedSize: manifest.size,
            localKey: [1] + [UInt8](repeating: 0, count: 31), options: SwarmEngine.Options(), seed: 1)
        var asked = Self.serverRanges(engine.handle(.fetch(manifest: manifest, server: true), at: 0))
        asked += Self.serverRanges(engine.handle(.opened(have: ChunkSet(count: 8), localBytes: 0), at: 0))
        let empty = LinkID(1)
        asked += Self.serverRanges(
            engine.handle(
                .connected(
                    ConnectedPeer(
                        link: empty, deviceKey: [2] + [UInt8](repeating: 0, count: 31), initiatedByUs: true,
                        superSeeding: false, listenAddress: nil)), at: 0.1))
        asked += Self.serverRanges(engine.handle(.received(empty, .bitfield(ChunkSet(count: 8).bitfield)), at: 0.2))
        asked += Self.serverRanges(engine.handle(.tick, at: 0.5))
        #expect(asked == 0)
        // The grace is over: the server is asked for what no peer has.
        #expect(Self.serverRanges(engine.handle(.tick, at: 0.8)) > 0)

        // The same start, but the peer announces a chunk: the grace ends then.
        var other = SwarmEngine(
            root: manifest.root, chunking: .default, expectedSize: manifest.size,
            localKey: [1] + [UInt8](repeating: 0, count: 31), options: SwarmEngine.Options(), seed: 1)
        _ = other.handle(.fetch(manifest: manifest, server: true), at: 0)
        _ = other.handle(.opened(have: ChunkSet(count: 8), localBytes: 0), at: 0)
        _ = other.handle(
            .connected(
                ConnectedPeer(
                    link: empty, deviceKey: [2] + [UInt8](repeating: 0, count: 31), initiatedByUs: true,
                    superSeeding: false, listenAddress: nil)), at: 0.1)
        let holder = other.handle(.received(empty, .bitfield(ChunkSet(count: 8, indexes: [0]).bitfield)), at: 0.2)
        #expect(Self.serverRanges(holder) > 0)
    }
}
