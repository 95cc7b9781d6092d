internal import NIOCore

/// What one connected peer makes this side keep, for tests and diagnostics: the bounds of docs/protocol.md §7.2 are
/// the engine's (`UploadQueue`, `recordHave`), the send backlog is the connection's (`PeerSender`).
extension Swarm {
    struct PeerBookkeeping: Sendable, Equatable {
        var queuedBlocks: Int
        var queuedCancels: Int
        var queuedPages: Int
        /// Entries of `Swarm.queuedChunks` (the read-ahead's list): at most one per queued block request.
        var queuedChunkRuns: Int
        var earlyHaves: Int
        var backlog: Int
        var peakBacklog: Int
    }

    /// The bookkeeping of the peer with `deviceKey`, if connected.
    func bookkeeping(of deviceKey: [UInt8]) -> PeerBookkeeping? {
        guard let link = engine.link(of: deviceKey), let peer = engine.links[link], let handle = connections[link]
        else { return nil }
        return PeerBookkeeping(
            queuedBlocks: peer.uploads.blocks, queuedCancels: peer.uploads.cancels, queuedPages: peer.uploads.pages,
            queuedChunkRuns: queuedChunks[link]?.count ?? 0,
            earlyHaves: peer.earlyHaves?.cardinality ?? 0, backlog: handle.link.sender.bufferedBytes,
            peakBacklog: handle.link.sender.peakBufferedBytes)
    }

    /// The bytes waiting in the channel of the peer with `deviceKey` (NIO's pending writes, measured below
    /// `PeerSender`, so it counts every write whichever way it went), or nil when not connected; for tests.
    func channelBacklog(of deviceKey: [UInt8]) async -> Int? {
        guard let link = engine.link(of: deviceKey),
            let channel = connections[link]?.link.trunk.connection.channel.channel
        else { return nil }
        return try? await channel.getOption(.bufferedWritableBytes).get()
    }

    /// The most chunks the version can have before its manifest is known; for tests.
    var chunkCountBound: Int { engine.chunkCountBound }

    /// Whether a manifest is being assembled from a peer; for tests.
    var isAssemblingManifest: Bool { engine.manifestAssembler.isActive }
}
