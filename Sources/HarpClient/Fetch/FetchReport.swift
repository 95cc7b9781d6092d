public import ChunkStore
internal import Synchronization

/// What fetching one file did.
public struct FetchReport: Sendable {
    public var remotePath: String
    public var destination: String
    public var size: Int64
    public var root: Hash256?
    /// S of the swarm the file was fetched through or is seeded in, if any.
    public var swarmID: [UInt8]?
    /// The server version's etag when the fetch began.
    public var etag: String?
    /// The comparison with the server's bytes before the rename (nil when the bytes came from the server itself).
    public var check: ServerComparison.Outcome?
    /// "swarm" (peers and web seed), "server" (the server alone).
    public var method: String
    public var bytesFromPeers: Int64 = 0
    public var bytesFromServer: Int64 = 0
    public var bytesFromLocal: Int64 = 0
    /// Bytes this process sent to other peers while it fetched the file.
    public var bytesUploaded: Int64 = 0
    /// Of `bytesFromPeers` and `bytesUploaded`: the bytes that crossed the signaling server's relay.
    public var bytesFromRelayedPeers: Int64 = 0
    public var bytesUploadedRelayed: Int64 = 0
    /// Bytes received and not used: endgame duplicates, blocks that arrived after a cancel or choke, bad chunks.
    public var bytesWasted: Int64 = 0
    public var peersUsed = 0
    public var badChunks = 0
    public var seconds: Double = 0
    public var notes: [String] = []

    public init(remotePath: String, destination: String, size: Int64, method: String) {
        self.remotePath = remotePath
        self.destination = destination
        self.size = size
        self.method = method
    }
}

/// A box for the download sink the swarm opens once the manifest is known (the swarm calls `openSink` from its own
/// task; the fetcher reads the box afterwards).
final class SinkBox: Sendable {
    private let value = Mutex<DownloadSink?>(nil)

    var sink: DownloadSink? {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}

extension Duration {
    /// The duration in seconds as a Double.
    var secondsValue: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}
