/// The Nextcloud server as a source of last resort: byte ranges of the version a swarm fetches, read with the user's
/// own credentials. SwarmKit does not know HTTP; the command line gives it an implementation over `NextcloudClient`
/// that sends `Range` with `If-Match` on the etag the version was checked against.
public protocol WebSeed: Sendable {
    /// The bytes `offset ..< offset + length` of the version.
    ///
    /// - Throws: `WebSeedError.changed` when the server's file is no longer that version (the etag moved), or any
    ///   other error for a failure that may pass (the engine retries with backoff).
    func fetch(offset: Int64, length: Int) async throws -> [UInt8]
}

/// Failures of a web seed that the engine treats specially.
public enum WebSeedError: Error, Equatable, Sendable {
    /// The file on the server changed: nothing more can be fetched for this version from the server.
    case changed
    /// The server refused the user (401/403/404): stop asking it.
    case refused(String)
}
