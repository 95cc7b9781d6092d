public import ChunkStore

/// Why a swarm fetch stopped.
public enum SwarmError: Error, Sendable, CustomStringConvertible {
    /// No peer gave a manifest that matches the content root in time.
    case noManifest
    /// The server's file has a new etag: the version being fetched is not the server's any more.
    case changedOnServer
    /// The server refused the user.
    case serverRefused(String)
    /// The server kept failing and no peer is left.
    case server(String)
    /// The server's bytes do not match the manifest that peers and the sidecar describe.
    case serverMismatch(chunk: Int)
    /// Writing to the local disk failed.
    case storage(ChunkStoreError)
    /// No peer has been connected for a while and the server may not be asked (`--no-server`, or an upload in
    /// progress): nothing can make progress.
    case noSources

    /// The engine's words for the same failure (one text for both).
    public var description: String {
        switch self {
        case .noManifest: EngineFailure.noManifest.description
        case .changedOnServer: EngineFailure.changedOnServer.description
        case .serverRefused(let why): EngineFailure.serverRefused(why).description
        case .server(let why): EngineFailure.server(why).description
        case .serverMismatch(let chunk): EngineFailure.serverMismatch(chunk: chunk).description
        case .storage(let error): "\(error)"
        case .noSources: EngineFailure.noSources.description
        }
    }

    /// The error for an engine's failure (`storage` carries the disk's own error when the shell has it).
    init(_ failure: EngineFailure, storage: ChunkStoreError?) {
        switch failure {
        case .noManifest: self = .noManifest
        case .changedOnServer: self = .changedOnServer
        case .serverRefused(let why): self = .serverRefused(why)
        case .server(let why): self = .server(why)
        case .serverMismatch(let chunk): self = .serverMismatch(chunk: chunk)
        case .storage(let why): self = storage.map { .storage($0) } ?? .server(why)
        case .noSources: self = .noSources
        }
    }
}
