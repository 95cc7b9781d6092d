/// What the engine asks its shell to do, in order, after an event.
public enum EngineAction: Sendable, Equatable, Codable {
    /// Send messages to a peer (queued without waiting; a full backlog comes back as `EngineEvent.backlogFull`).
    case send(LinkID, [OutboundMessage])
    /// Say goodbye and close the connection.
    case close(LinkID, GoodbyeReason)
    /// Hand an item to the link's upload loop (it takes them in order: `EngineEvent.uploadTaken`).
    case queueUpload(LinkID, UploadItem)
    /// Read the block and send it as a piece, after waiting `delay` seconds (the upload limit).
    case serveBlock(LinkID, BlockRequest, delay: Double)
    /// Send page `page` of the manifest (and wait until it is written before the next item).
    case servePage(LinkID, page: Int)
    /// Copy the bytes of the piece just received into the chunk being assembled from that link
    /// (`chunkLength` bytes in all).
    case keepBlock(LinkID, BlockRequest, chunkLength: Int)
    /// Verify and write chunk `chunk` from `source` (the assembled blocks, or the server's bytes), then report
    /// `stored` or `rejected`.
    case store(chunk: Int, from: ChunkSource)
    /// Forget the bytes held for chunk `chunk` from `source` (cancelled, a duplicate, or the link is gone).
    case discard(chunk: Int, from: ChunkSource)
    /// A new connection of the same peer replaced link `from` (a relayed link upgraded to a punched one, a peer that
    /// dialled again): the blocks held for `chunks` from `from` now belong to the chunks' assembly from `to` (their
    /// missing blocks are asked again there), and `from`'s close, which follows, may wait a moment for the peer to
    /// take the new connection too.
    case handOver(from: LinkID, to: LinkID, chunks: [Int])
    /// Fetch `length` bytes at `offset` from the server for chunk `chunk`; report `serverDone` or `serverFailed`.
    case fetchRange(chunk: Int, offset: Int64, length: Int)
    /// Stop the server request for chunk `chunk` (it came from elsewhere); no report is expected.
    case cancelRange(chunk: Int)
    /// Peer exchange named a swarm member this side may dial.
    case discovered(PeerAddress)
    /// The manifest is known and verified (`SwarmEngine.manifest`): open the download.
    case manifestReady
    /// Every chunk is verified and written.
    case finished
    /// The fetch cannot go on.
    case failed(EngineFailure)
    /// Feed `EngineEvent.tick` at this time (replaces any earlier wake-up).
    case wake(at: Double)
    /// Something worth a log line.
    case log(EngineLog)
}

/// Why a fetch stopped.
public enum EngineFailure: Error, Sendable, Equatable, Codable, CustomStringConvertible {
    /// No peer gave a manifest that matches the content root in time.
    case noManifest
    /// The server's file has a new etag.
    case changedOnServer
    /// The server refused the user.
    case serverRefused(String)
    /// The server kept failing and no peer is left.
    case server(String)
    /// The server's bytes do not match the manifest.
    case serverMismatch(chunk: Int)
    /// Writing to the local disk failed.
    case storage(String)
    /// No peer has been connected for a while and the server may not be asked.
    case noSources

    public var description: String {
        switch self {
        case .noManifest: "no peer gave the file's manifest in time"
        case .changedOnServer: "the file changed on the server during the download"
        case .serverRefused(let why): "the server refused: \(why)"
        case .server(let why): "the server keeps failing: \(why)"
        case .serverMismatch(let chunk):
            "chunk \(chunk) from the server does not match the file's content root (a wrong sidecar?)"
        case .storage(let why): why
        case .noSources: "no peer has been reachable for a while and the server may not be used"
        }
    }
}

/// A log line the engine asks for: a constant message and its metadata.
public struct EngineLog: Sendable, Equatable, Codable {
    public enum Level: String, Sendable, Codable { case trace, debug, info, warning }
    public var level: Level
    public var message: String
    public var metadata: [String: String]

    public init(_ level: Level, _ message: String, _ metadata: [String: String] = [:]) {
        self.level = level
        self.message = message
        self.metadata = metadata
    }
}
