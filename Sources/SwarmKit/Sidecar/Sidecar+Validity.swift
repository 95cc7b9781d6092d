public import ChunkStore

/// What the server says about a file now (from a PROPFIND as the fetching user): the chunk store's `ServerVersion`.
public typealias RemoteVersion = ServerVersion

extension Sidecar {
    /// Whether a sidecar describes the server's current version of the file.
    public enum Validity: Equatable, Sendable {
        /// fileid, etag and size match: use R as is (the comparison with the server before renaming still runs).
        case valid
        /// fileid, size and mtime match but the etag moved. Nextcloud changes a file's etag without changing its bytes
        /// when a lock is taken or released (files_lock), so this is not proof of new content: use R, compare the
        /// assembled bytes with the server's before the rename as always, and if they match republish the sidecar with
        /// the new etag (same R and σ) when the user may write the folder.
        case needsSpotCheck
        /// Anything else: the file changed. Fetch from the server, recompute R and republish.
        case stale
    }

    /// Compares this sidecar with the server's current view of the file.
    public func validity(for remote: RemoteVersion) -> Validity {
        guard !pending, fileid == remote.fileid, size == remote.size else { return .stale }
        if etag == remote.etag { return .valid }
        return mtime == remote.mtime ? .needsSpotCheck : .stale
    }
}
