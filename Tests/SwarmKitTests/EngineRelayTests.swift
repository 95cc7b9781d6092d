import ChunkStore
import Foundation
import Testing

@testable import SwarmKit

/// Relayed links as the last resort (docs/engine.md, "Relayed links"): while a link around the relay serves the
/// fetcher, a relayed peer is asked only for chunks no such link gives, after a moment's patience, and a connection
/// around the relay always wins the tie-break against a relayed one.
@Suite("Engine: relayed links as the last resort")
struct EngineRelayTests {
    static let relayedKey = [3] + [UInt8](repeating: 0, count: 31)

    static func requested(_ actions: [EngineAction], on link: LinkID) -> Set<Int> {
        Set(EngineHandOverTests.requests(actions, on: link).map { Int($0.chunk) })
    }

    static func peer(_ link: LinkID, key: [UInt8], relayed: Bool, initiatedByUs: Bool = true) -> EngineEvent {
        .connected(
            ConnectedPeer(
                link: link, deviceKey: key, initiatedByUs: initiatedByUs, superSeeding: false, listenAddress: nil,
                relayed: relayed))
    }

    /// A fetcher of 8 chunks with a direct peer (link 1) that has `directHas` and has unchoked it, and a relayed peer
    /// (link 3) that has every chunk; returns the requests the direct peer got.
    static func fetcher(directHas: [Int]) throws -> (SwarmEngine, direct: LinkID, relayed: LinkID, Set<Int>) {
        var (engine, direct, _) = try EngineHostileInputTests.fetchingEngine()
        _ = engine.handle(.received(direct, .bitfield(ChunkSet(count: 8, indexes: directHas).bitfield)), at: 0)
        let asked = Self.requested(engine.handle(.received(direct, .unchoke), at: 0), on: direct)
        let relayed = LinkID(3)
        _ = engine.handle(Self.peer(relayed, key: relayedKey, relayed: true), at: 0)
        _ = engine.handle(.received(relayed, .bitfield(ChunkSet(count: 8, full: true).bitfield)), at: 0)
        return (engine, direct, relayed, asked)
    }

    @Test func aRelayedPeerIsAskedOnlyForChunksNoDirectPeerHas() throws {
        var (engine, _, relayed, asked) = try Self.fetcher(directHas: Array(0..<6))
        #expect(!asked.isEmpty)
        #expect(asked.isSubset(of: Set(0..<6)))
        // The direct peer has delivered nothing yet: what only the relayed peer has is asked of it at once.
        let relayedAsked = Self.requested(engine.handle(.received(relayed, .unchoke), at: 0), on: relayed)
        #expect(relayedAsked == [6, 7])
        // Later, with the direct peer's chunks all in flight or here, the relayed peer is still not asked for them.
        var later: Set<Int> = []
        for time in stride(from: 1.0, through: 10.0, by: 1.0) {
            later.formUnion(Self.requested(engine.handle(.tick, at: time), on: relayed))
        }
        #expect(later.isSubset(of: [6, 7]))
    }

    @Test func aChunkOnlyARelayedPeerHasWaitsWhileDirectLinksDeliverThenComesOverTheRelay() throws {
        var (engine, direct, relayed, asked) = try Self.fetcher(directHas: Array(0..<4))
        let first = try #require(asked.min())
        // A block arrives on the direct link at 1.0: direct links deliver.
        _ = engine.handle(.received(direct, .piece(chunk: UInt32(first), offset: 0, length: 128 << 10)), at: 1.0)
        let atOnce = Self.requested(engine.handle(.received(relayed, .unchoke), at: 1.1), on: relayed)
        #expect(atOnce.isEmpty)
        // Meanwhile the direct peer gets chunk 4: it is never asked of the relayed one.
        _ = engine.handle(.received(direct, .have(chunk: 4)), at: 1.5)
        // No direct delivery for a second: the relay is the last resort for what only it has.
        let idle = Self.requested(engine.handle(.tick, at: 2.2), on: relayed)
        #expect(!idle.isEmpty)
        #expect(idle.isSubset(of: [5, 6, 7]))
    }

    @Test func withOnlyRelayedPeersNothingIsHeldBack() throws {
        var (engine, link, _) = try EngineHostileInputTests.fetchingEngine()
        _ = engine.handle(.disconnected(link), at: 0)
        let relayed = LinkID(3)
        _ = engine.handle(Self.peer(relayed, key: Self.relayedKey, relayed: true), at: 0)
        _ = engine.handle(.received(relayed, .bitfield(ChunkSet(count: 8, full: true).bitfield)), at: 0)
        let asked = Self.requested(engine.handle(.received(relayed, .unchoke), at: 0), on: relayed)

        var (plain, direct, _) = try EngineHostileInputTests.fetchingEngine()
        _ = plain.handle(.received(direct, .bitfield(ChunkSet(count: 8, full: true).bitfield)), at: 0)
        let directAsked = Self.requested(plain.handle(.received(direct, .unchoke), at: 0), on: direct)
        #expect(!asked.isEmpty)
        #expect(asked.count == directAsked.count)
    }

    @Test func aConnectionAroundTheRelayReplacesARelayedOneWhoeverDialled() throws {
        var (engine, link, _) = try EngineHostileInputTests.fetchingEngine()
        _ = engine.handle(.disconnected(link), at: 0)
        // This side's key is the lower one and it opened the relay: by the initiators' keys alone, the peer's dial
        // (of this side's port mapping, say) would be refused.
        let relayed = LinkID(3)
        _ = engine.handle(Self.peer(relayed, key: Self.relayedKey, relayed: true, initiatedByUs: true), at: 0)
        _ = engine.handle(.received(relayed, .bitfield(ChunkSet(count: 8, full: true).bitfield)), at: 0)
        let asked = Self.requested(engine.handle(.received(relayed, .unchoke), at: 0), on: relayed)
        let mapped = LinkID(4)
        let upgrade = engine.handle(
            Self.peer(mapped, key: Self.relayedKey, relayed: false, initiatedByUs: false), at: 1)
        #expect(upgrade.contains(.handOver(from: relayed, to: mapped, chunks: asked.sorted())))
        #expect(upgrade.contains(.close(relayed, .duplicateConnection)))
        #expect(!upgrade.contains(.close(mapped, .duplicateConnection)))
        #expect(engine.link(of: Self.relayedKey) == mapped)

        // A relayed connection of the same peer never replaces it, though this side (the lower key) opened it.
        let late = LinkID(5)
        let refused = engine.handle(Self.peer(late, key: Self.relayedKey, relayed: true, initiatedByUs: true), at: 2)
        #expect(refused.contains(.close(late, .duplicateConnection)))
        #expect(engine.link(of: Self.relayedKey) == mapped)
    }

    @Test func aRecordingWithoutTheLinkKindReplaysItAsDirect() throws {
        let old = #"{"link":{"raw":7},"deviceKey":[1,2],"initiatedByUs":true,"superSeeding":false}"#
        let peer = try JSONDecoder().decode(ConnectedPeer.self, from: Data(old.utf8))
        #expect(!peer.relayed)
        #expect(peer.link == LinkID(7))
        var relayed = peer
        relayed.relayed = true
        let again = try JSONDecoder().decode(ConnectedPeer.self, from: JSONEncoder().encode(relayed))
        #expect(again == relayed)
    }
}
