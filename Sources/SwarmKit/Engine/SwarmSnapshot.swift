/// What the swarm has done so far.
public struct SwarmSnapshot: Sendable, Equatable {
    public var chunkCount = 0
    public var chunksHave = 0
    public var size: Int64 = 0
    public var bytesHave: Int64 = 0
    /// Verified bytes that came from peers, from the server, and from the local store.
    public var bytesFromPeers: Int64 = 0
    public var bytesFromServer: Int64 = 0
    public var bytesFromLocal: Int64 = 0
    /// Bytes received that were not used (endgame duplicates, cancelled blocks, bad chunks).
    public var bytesWasted: Int64 = 0
    public var bytesUploaded: Int64 = 0
    /// Of `bytesFromPeers` and `bytesUploaded`: the bytes that crossed a relayed link (the signaling server's relay).
    public var bytesFromRelayedPeers: Int64 = 0
    public var bytesUploadedRelayed: Int64 = 0
    public var chunksFromPeers = 0
    public var chunksFromServer = 0
    public var badChunks = 0
    public var peers = 0
    public var bannedPeers = 0
    /// Faults of peers: bad chunks or manifests, input out of the protocol's bounds, a backlog past its limit.
    public var peerFaults = 0
    /// Connections this side closed because of the peer (every fault, and protocol violations such as an idle
    /// timeout or a malformed frame found by the connection itself).
    public var peersDropped = 0
    /// Connections refused at once because the peer is banned in this swarm.
    public var bannedRefused = 0
    /// The largest send backlog any peer connection has had (`PeerSender.peakBufferedBytes`).
    public var peakPeerBacklog = 0
    /// Distinct peers that delivered at least one verified chunk.
    public var peersUsed = 0
    public var downloadRate: Double = 0
    public var uploadRate: Double = 0
    public var complete = false
    /// Whether this side super-seeds now (announcing one offered chunk per peer).
    public var superSeeding = false
    /// Set when this side stopped because the version changed on the server or another fatal error.
    public var failure: String?
}
