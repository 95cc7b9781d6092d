public import ChunkStore

/// One connection as the engine names it: a number the shell hands out, unique for the swarm's life. The same device
/// reconnecting gets a new link.
public struct LinkID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public let raw: UInt64
    public init(_ raw: UInt64) { self.raw = raw }
    public static func < (a: LinkID, b: LinkID) -> Bool { a.raw < b.raw }
    public var description: String { "link-\(raw)" }
}

/// Where a chunk comes from: a connected peer, or the Nextcloud server (the web seed).
public typealias ChunkSource = PiecePicker<LinkID>.Source

/// What the engine learns of a new connection.
public struct ConnectedPeer: Sendable, Equatable, Codable {
    public var link: LinkID
    /// The peer's device key (authenticated by the handshake).
    public var deviceKey: [UInt8]
    public var initiatedByUs: Bool
    /// The peer said (in its hello) that it super-seeds: it has every chunk but announces them one at a time.
    public var superSeeding: Bool
    /// Where the peer accepts connections, if known (for peer exchange).
    public var listenAddress: PeerAddress?
    /// The connection goes through the signaling server's relay: the last resort (it loads the organisation's
    /// server and shares its uplink), asked only for what no direct link gives (docs/engine.md, "Relayed links").
    public var relayed: Bool

    public init(
        link: LinkID, deviceKey: [UInt8], initiatedByUs: Bool, superSeeding: Bool, listenAddress: PeerAddress?,
        relayed: Bool = false
    ) {
        self.link = link
        self.deviceKey = deviceKey
        self.initiatedByUs = initiatedByUs
        self.superSeeding = superSeeding
        self.listenAddress = listenAddress
        self.relayed = relayed
    }

    private enum CodingKeys: String, CodingKey {
        case link, deviceKey, initiatedByUs, superSeeding, listenAddress, relayed
    }

    /// Recordings made before links had a kind have no `relayed`: those links were all treated as direct.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        link = try container.decode(LinkID.self, forKey: .link)
        deviceKey = try container.decode([UInt8].self, forKey: .deviceKey)
        initiatedByUs = try container.decode(Bool.self, forKey: .initiatedByUs)
        superSeeding = try container.decode(Bool.self, forKey: .superSeeding)
        listenAddress = try container.decodeIfPresent(PeerAddress.self, forKey: .listenAddress)
        relayed = try container.decodeIfPresent(Bool.self, forKey: .relayed) ?? false
    }
}

/// A peer's message as the engine sees it: a piece carries its place and length, never its bytes (the shell keeps
/// those, and copies them where `EngineAction.keepBlock` says).
public enum InboundMessage: Sendable, Equatable, Codable {
    case choke
    case unchoke
    case interested
    case notInterested
    case bitfield(Bitfield)
    case have(chunk: UInt32)
    case request(BlockRequest)
    case cancel(BlockRequest)
    case piece(chunk: UInt32, offset: UInt32, length: Int)
    case manifestRequest(page: UInt32)
    case manifestPage(ManifestPage)
    case peerExchange([PeerAddress])
}

/// A message the engine sends to a peer (pieces and manifest pages go through the upload loop instead:
/// `EngineAction.serveBlock` and `servePage`).
public enum OutboundMessage: Sendable, Equatable, Codable {
    case choke
    case unchoke
    case interested
    case notInterested
    case bitfield(Bitfield)
    case have(chunk: UInt32)
    case request(BlockRequest)
    case cancel(BlockRequest)
    case manifestRequest(page: UInt32)
    case peerExchange([PeerAddress])
}

/// What a peer asked this side to send, in the order it asked, for the connection's upload loop.
public enum UploadItem: Sendable, Equatable, Codable {
    case block(BlockRequest)
    case manifestPage(Int)
}

/// How a request to the server failed.
public enum ServerFailure: Sendable, Equatable, Codable {
    /// The server's file changed (the etag moved): nothing more can be fetched for this version.
    case changed
    /// The server refused the user: stop asking it.
    case refused(String)
    /// A failure that may pass (retried with backoff).
    case transient(String)
}

/// Everything that can happen to a swarm, fed to `SwarmEngine.handle(_:at:)` with the time it happened.
public enum EngineEvent: Sendable, Equatable, Codable {
    /// This device has the complete version (the store can read every chunk): serve it.
    case seed(Manifest)
    /// This device has part of the version (`holding`, one bit per chunk; the store can read those chunks): serve that
    /// part with a bitfield, never super-seeding. A folder's bundle that lists files of other writers is served so.
    case seedPart(Manifest, holding: ChunkSet)
    /// Begin fetching. `manifest` when it is known locally; `server` when the web seed may be used.
    case fetch(manifest: Manifest?, server: Bool)
    /// The download was opened: the chunks the destination holds already (resumed, or copied from the local store),
    /// and how many bytes the store gave.
    case opened(have: ChunkSet, localBytes: Int64)
    /// The fetched file is in place: it is served from the store from now on, and the fetch state is dropped.
    case fetchFinished
    /// Addresses that are this device's own (never reported when peer exchange names them).
    case ownAddresses([PeerAddress])
    /// An authenticated connection wants in.
    case connected(ConnectedPeer)
    /// A connection ended (closed by either side).
    case disconnected(LinkID)
    /// A connection ended because the peer broke the protocol below the engine (malformed input, idle timeout).
    case violated(LinkID, GoodbyeReason)
    case received(LinkID, InboundMessage)
    /// The link's upload loop takes its next item.
    case uploadTaken(LinkID, UploadItem)
    /// A piece was written to the link's send queue.
    case blockSent(LinkID, BlockRequest)
    /// The link's send backlog passed its limit (the peer does not read).
    case backlogFull(LinkID)
    /// A chunk passed verification and was written.
    case stored(chunk: Int, from: ChunkSource)
    /// A chunk failed verification.
    case rejected(chunk: Int, from: ChunkSource)
    /// Writing to the local disk failed.
    case storageFailed(String)
    /// The server's bytes of a chunk arrived (the shell holds them).
    case serverDone(chunk: Int)
    case serverFailed(chunk: Int, ServerFailure)
    /// Time passed (the engine asked for it with `EngineAction.wake`).
    case tick
}
