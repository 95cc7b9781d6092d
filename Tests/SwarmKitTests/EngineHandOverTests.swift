import ChunkStore
import Testing

@testable import SwarmKit

/// A relayed connection upgraded to a punched one (docs/nat.md, "Relay, then upgrade"): the new connection of the same
/// peer replaces the old one, and nothing already received is lost nor asked twice.
@Suite("Engine: a peer's connection handed over")
struct EngineHandOverTests {
    static let peerKey = [2] + [UInt8](repeating: 0, count: 31)

    static func requests(_ actions: [EngineAction], on link: LinkID) -> [BlockRequest] {
        actions.flatMap { action -> [BlockRequest] in
            guard case .send(link, let messages) = action else { return [] }
            return messages.compactMap { if case .request(let block) = $0 { block } else { nil } }
        }
    }

    static func connected(_ link: LinkID) -> EngineEvent {
        // This side's key is the lower one and it initiates both the relay and the punch (the punch's Noise roles
        // follow the key order): the same side dialled again, so the new connection replaces the old.
        .connected(
            ConnectedPeer(
                link: link, deviceKey: peerKey, initiatedByUs: true, superSeeding: false, listenAddress: nil))
    }

    @Test func blocksReceivedOnTheOldLinkAreKeptAndOnlyTheMissingOnesAskedOnTheNewOne() throws {
        var (engine, relayed, _) = try EngineHostileInputTests.fetchingEngine()
        let full = ChunkSet(count: 8, full: true).bitfield
        _ = engine.handle(.received(relayed, .bitfield(full)), at: 0)
        let asked = Self.requests(engine.handle(.received(relayed, .unchoke), at: 0), on: relayed)
        let first = try #require(asked.first?.chunk)
        let firstBlocks = asked.filter { $0.chunk == first }
        #expect(firstBlocks.count > 3)
        let outstanding = Set(asked.map { Int($0.chunk) })
        // Three blocks of the first chunk arrive over the relay and are kept.
        for block in firstBlocks.prefix(3) {
            let actions = engine.handle(
                .received(relayed, .piece(chunk: block.chunk, offset: block.offset, length: Int(block.length))), at: 1)
            #expect(actions.contains(.keepBlock(relayed, block, chunkLength: 1 << 20)))
        }

        let punched = LinkID(2)
        let upgrade = engine.handle(Self.connected(punched), at: 2)
        #expect(upgrade.contains(.handOver(from: relayed, to: punched, chunks: outstanding.sorted())))
        #expect(upgrade.contains(.close(relayed, .duplicateConnection)))
        // Nothing held is thrown away, and nothing is asked before the new link may be asked.
        #expect(!upgrade.contains { if case .discard = $0 { true } else { false } })
        #expect(Self.requests(upgrade, on: punched).isEmpty)
        #expect(engine.snapshot.peers == 1)

        _ = engine.handle(.received(punched, .bitfield(full)), at: 2)
        let again = Self.requests(engine.handle(.received(punched, .unchoke), at: 2), on: punched)
        // The first chunk's three received blocks are not asked again; every other inherited block is.
        let againFirst = again.filter { $0.chunk == first }
        #expect(againFirst == Array(firstBlocks.dropFirst(3)))
        let inheritedBlocks = asked.count - 3
        #expect(
            Array(again.prefix(inheritedBlocks)).sorted(by: Self.order)
                == Array(asked.dropFirst(3)).sorted(by: Self.order))

        // The rest of the first chunk arrives on the punched link: the chunk is whole and goes to the store.
        var stored: [EngineAction] = []
        for block in againFirst {
            stored += engine.handle(
                .received(punched, .piece(chunk: block.chunk, offset: block.offset, length: Int(block.length))), at: 3)
        }
        #expect(stored.contains(.store(chunk: Int(first), from: .peer(punched))))
        // A late piece on the old link is ignored, not kept.
        let late = try #require(firstBlocks.last)
        let ignored = engine.handle(
            .received(relayed, .piece(chunk: late.chunk, offset: late.offset, length: Int(late.length))), at: 3)
        #expect(!ignored.contains { if case .keepBlock = $0 { true } else { false } })
        #expect(engine.snapshot.bytesWasted == 0)
    }

    @Test func aChunkTheNewConnectionDoesNotAnnounceIsWantedAgain() throws {
        var (engine, relayed, _) = try EngineHostileInputTests.fetchingEngine()
        _ = engine.handle(.received(relayed, .bitfield(ChunkSet(count: 8, full: true).bitfield)), at: 0)
        let asked = Self.requests(engine.handle(.received(relayed, .unchoke), at: 0), on: relayed)
        let chunks = Set(asked.map { Int($0.chunk) })
        let punched = LinkID(2)
        _ = engine.handle(Self.connected(punched), at: 1)
        // The peer (restarted, say) has none of the chunks asked before: each is given up, its bytes discarded.
        _ = engine.handle(.received(punched, .bitfield(ChunkSet(count: 8).bitfield)), at: 1)
        _ = engine.handle(.received(punched, .have(chunk: 7)), at: 1)
        let actions = engine.handle(.received(punched, .unchoke), at: 1)
        for chunk in chunks where chunk != 7 {
            #expect(actions.contains(.discard(chunk: chunk, from: .peer(punched))))
        }
        #expect(Self.requests(actions, on: punched).allSatisfy { $0.chunk == 7 })
    }

    static func order(_ a: BlockRequest, _ b: BlockRequest) -> Bool {
        (a.chunk, a.offset) < (b.chunk, b.offset)
    }
}
