import ChunkStore
import Testing

@testable import SwarmKit

/// When a fetcher asks the origin for a chunk a peer also has.
@Suite("Engine: the origin as the last resort")
struct EngineOriginFallbackTests {
    static func key(_ byte: UInt8) -> [UInt8] { [byte] + [UInt8](repeating: 0, count: 31) }

    static func requested(_ actions: [EngineAction], of link: LinkID) -> [BlockRequest] {
        EngineOverdueTests.requests(actions, to: link)
    }

    /// Handles `event`, then stores every chunk the engine hands over for storing, as the shell does.
    static func feed(_ engine: inout SwarmEngine, _ event: EngineEvent, at time: Double) -> [EngineAction] {
        var actions = engine.handle(event, at: time)
        for case .store(let chunk, let source) in actions {
            actions += engine.handle(.stored(chunk: chunk, from: source), at: time)
        }
        return actions
    }

    /// Every fetcher waited for the last chunk, which only the origin had; a peer that served this fetcher well
    /// earlier, though not lately, announces it. The fetcher asks that peer and not the origin too: judged by what it
    /// sent lately, the peer looked slow, and every fetcher asked the origin for the chunk as well (in the late-seeder
    /// benchmark, two chunks went out five more times each so).
    @Test func aPeerThatServedWellIsAskedForTheLastChunkNotTheOrigin() throws {
        var (engine, peer, _) = try EngineHostileInputTests.fetchingEngine()
        let other = LinkID(2)
        let origin = LinkID(3)
        for (link, byte, superSeeding) in [(other, UInt8(3), false), (origin, UInt8(4), true)] {
            _ = engine.handle(
                .connected(
                    ConnectedPeer(
                        link: link, deviceKey: Self.key(byte), initiatedByUs: true, superSeeding: superSeeding,
                        listenAddress: nil)), at: 0)
        }
        // The origin has everything and chokes this fetcher for now; `peer` has chunk 0, `other` chunks 1 to 6.
        _ = engine.handle(.received(origin, .bitfield(ChunkSet(count: 8, full: true).bitfield)), at: 0)
        _ = engine.handle(.received(peer, .bitfield(ChunkSet(count: 8, indexes: [0]).bitfield)), at: 0)
        _ = engine.handle(.received(other, .bitfield(ChunkSet(count: 8, indexes: 1...6).bitfield)), at: 0)
        var asked = Self.requested(engine.handle(.received(peer, .unchoke), at: 0), of: peer)
        // `peer` sends its chunk over 1.2 s; `other` keeps sending until 6 s.
        for (index, block) in asked.enumerated() {
            _ = Self.feed(
                &engine, .received(peer, .piece(chunk: block.chunk, offset: block.offset, length: Int(block.length))),
                at: 0.15 * Double(index + 1))
        }
        var time = 0.0
        asked = Self.requested(engine.handle(.received(other, .unchoke), at: 0), of: other)
        while time < 6, let block = asked.first {
            asked.removeFirst()
            time += 0.05
            let actions = Self.feed(
                &engine, .received(other, .piece(chunk: block.chunk, offset: block.offset, length: Int(block.length))),
                at: time)
            asked += Self.requested(actions, of: other)
        }
        #expect(engine.have?.cardinality ?? 0 >= 5)
        // Nobody has delivered for more than a second when `peer` announces chunk 7 and the origin unchokes.
        let fromPeer = Self.requested(engine.handle(.received(peer, .have(chunk: 7)), at: 7.5), of: peer)
        #expect(fromPeer.contains { $0.chunk == 7 })
        let fromOrigin = Self.requested(engine.handle(.received(origin, .unchoke), at: 7.5), of: origin)
        #expect(!fromOrigin.contains { $0.chunk == 7 })
    }
}
