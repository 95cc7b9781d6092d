internal import ChunkStore

/// Sending on a peer's behalf and keeping what a peer sends within the protocol's bounds (docs/protocol.md §7.2):
/// every message goes through the connection's one bounded queue, and a peer whose backlog passes its limit, or
/// whose input passes a bound, is dropped as a fault (banned after `Options.faultsBeforeBan`).
extension Swarm {
    /// Sends a message to a peer without waiting, through the connection's queue. Returns false when the link is
    /// gone, or was dropped because its backlog is full (the peer does not read).
    @discardableResult
    func send(_ message: WireMessage, to key: PeerKey) -> Bool {
        send([message], to: key)
    }

    /// Sends messages to a peer without waiting, flushed once; see `send(_:to:)`.
    @discardableResult
    func send(_ messages: [WireMessage], to key: PeerKey) -> Bool {
        guard let link = links[key] else { return false }
        do {
            try link.connection.sender.enqueue(messages)
            return true
        } catch {
            sendFailed(key, id: link.id, error)
            return false
        }
    }

    /// A send to a peer failed: a full backlog is a fault; a closed connection ends by itself.
    func sendFailed(_ key: PeerKey, id: UInt64, _ error: PeerSendError) {
        guard case .backlogExceeded = error, links[key]?.id == id else { return }
        logger.warning("peer does not read: dropped", metadata: ["peer": "\(key)", "error": "\(error)"])
        dropLink(key, reason: .internalError, fault: true)
    }

    /// Keeps a peer's `have` until its chunk set can take it. Before the manifest is known the haves go to a bit set
    /// of `chunkCountBound` chunks (at most 2 MiB), and an index past that bound is a fault. Returns false when the
    /// link was dropped or is gone.
    func recordHave(_ chunk: UInt32, from key: PeerKey) -> Bool {
        guard var link = links[key] else { return false }
        if manifest != nil {
            link.rawHaves.insert(chunk)
        } else {
            let bound = chunkCountBound
            guard Int(chunk) < bound else {
                logger.warning("peer announced a chunk past the file's end", metadata: ["peer": "\(key)"])
                dropLink(key, reason: .malformedMessage, fault: true)
                return false
            }
            var early = link.earlyHaves ?? ChunkSet(count: bound)
            early.insert(Int(chunk))
            link.earlyHaves = early
        }
        links[key] = link
        return true
    }

    /// The connection ended with a protocol violation found below the swarm (malformed or oversized input, a request
    /// for a chunk never announced, an idle timeout): the peer was dropped; all but an idle timeout are faults.
    func violated(_ key: PeerKey, id: UInt64, _ error: WireProtocolError) {
        guard links[key]?.id == id else { return }
        dropLink(key, reason: error.reason, fault: error.reason != .idleTimeout)
    }

    /// What one connected peer makes this side keep, for tests and diagnostics.
    struct PeerBookkeeping: Sendable, Equatable {
        var queuedBlocks: Int
        var queuedCancels: Int
        var queuedPages: Int
        var earlyHaves: Int
        var backlog: Int
        var peakBacklog: Int
    }

    /// The bookkeeping of the peer with `deviceKey`, if connected.
    func bookkeeping(of deviceKey: [UInt8]) -> PeerBookkeeping? {
        guard let link = links[PeerKey(deviceKey)] else { return nil }
        return PeerBookkeeping(
            queuedBlocks: link.uploads.blocks, queuedCancels: link.uploads.cancels, queuedPages: link.uploads.pages,
            earlyHaves: link.earlyHaves?.cardinality ?? 0, backlog: link.connection.sender.bufferedBytes,
            peakBacklog: link.connection.sender.peakBufferedBytes)
    }
}

extension Swarm {
    /// The bytes waiting in the channel of the peer with `deviceKey` (NIO's pending writes, measured below
    /// `PeerSender`, so it counts every write whichever way it went), or nil when not connected; for tests.
    func channelBacklog(of deviceKey: [UInt8]) async -> Int? {
        guard let channel = links[PeerKey(deviceKey)]?.connection.channel.channel else { return nil }
        return try? await channel.getOption(.bufferedWritableBytes).get()
    }
}
