import ChunkStore
import Testing

@testable import SwarmKit

/// Serving part of a version (a folder's bundle that lists other writers' files): the bitfield names exactly the chunks
/// held, a request for any other chunk is never served, more chunks later are announced with `have`, and super-seeding
/// (which offers chunks it assumes it holds) stays off.
@Suite("Engine: serving part of a version")
struct EnginePartSeedTests {
    static let chunkLength = 64 << 10

    static func manifest() throws -> Manifest {
        let refs = (0..<8).map { index in
            ChunkRef(hash: Hash256(bytes: [UInt8](repeating: UInt8(index + 1), count: 32))!, length: chunkLength)
        }
        return try Manifest(parameters: .default, chunks: refs)
    }

    static func holding(_ chunks: [Int]) -> ChunkSet { ChunkSet(count: 8, indexes: chunks) }

    static func sent(_ actions: [EngineAction], to link: LinkID) -> [OutboundMessage] {
        actions.flatMap { action -> [OutboundMessage] in
            guard case .send(link, let messages) = action else { return [] }
            return messages
        }
    }

    /// A seeder (super-seeding asked for, as `seed` runs it) serving chunks 0, 2 and 5, and one connected peer.
    static func partSeeder() throws -> (SwarmEngine, LinkID, [EngineAction]) {
        let manifest = try manifest()
        var options = SwarmEngine.Options()
        options.superSeed = true
        var engine = SwarmEngine(
            root: manifest.root, chunking: .default, expectedSize: manifest.size,
            localKey: [1] + [UInt8](repeating: 0, count: 31), options: options, seed: 7)
        _ = engine.handle(.seedPart(manifest, holding: holding([0, 2, 5])), at: 0)
        let link = LinkID(1)
        let actions = engine.handle(
            .connected(
                ConnectedPeer(
                    link: link, deviceKey: [2] + [UInt8](repeating: 0, count: 31), initiatedByUs: false,
                    superSeeding: false, listenAddress: nil)), at: 0)
        return (engine, link, actions)
    }

    @Test func theBitfieldNamesExactlyTheChunksHeldAndNothingIsSuperSeeded() throws {
        let (engine, link, actions) = try Self.partSeeder()
        let messages = Self.sent(actions, to: link)
        #expect(messages.contains(.bitfield(Self.holding([0, 2, 5]).bitfield)))
        #expect(!messages.contains { if case .have = $0 { true } else { false } })
        #expect(!engine.snapshot.superSeeding)
    }

    @Test func aChunkNotHeldIsNeverServedAndAHeldOneIs() throws {
        var (engine, link, _) = try Self.partSeeder()
        let unchoked = engine.handle(.received(link, .interested), at: 1)
        #expect(Self.sent(unchoked, to: link).contains(.unchoke))
        var served: [UInt32] = []
        for chunk in [1, 2, 7] {
            let block = BlockRequest(chunk: UInt32(chunk), offset: 0, length: UInt32(Self.chunkLength))
            _ = engine.handle(.received(link, .request(block)), at: 2)
            let actions = engine.handle(.uploadTaken(link, .block(block)), at: 2)
            for case .serveBlock(link, let request, _) in actions { served.append(request.chunk) }
        }
        #expect(served == [2])
    }

    @Test func chunksHeldLaterAreAnnouncedWithHaves() throws {
        var (engine, link, _) = try Self.partSeeder()
        let more = engine.handle(.seedPart(try Self.manifest(), holding: Self.holding([0, 1, 2, 5, 6])), at: 3)
        let announced = Self.sent(more, to: link).compactMap { if case .have(let chunk) = $0 { chunk } else { nil } }
        #expect(announced.sorted() == [1, 6])
        let all = engine.handle(.seed(try Self.manifest()), at: 4)
        let rest = Self.sent(all, to: link).compactMap { if case .have(let chunk) = $0 { chunk } else { nil } }
        #expect(rest.sorted() == [3, 4, 7])
        #expect(engine.have?.isFull == true)
        #expect(!engine.snapshot.superSeeding)
    }

    @Test func aChunkSetOfTheWrongSizeIsRefused() throws {
        let manifest = try Self.manifest()
        var engine = SwarmEngine(
            root: manifest.root, chunking: .default, expectedSize: manifest.size,
            localKey: [1] + [UInt8](repeating: 0, count: 31), options: SwarmEngine.Options(), seed: 7)
        _ = engine.handle(.seedPart(manifest, holding: ChunkSet(count: 9, full: true)), at: 0)
        #expect(engine.have == nil)
    }
}
