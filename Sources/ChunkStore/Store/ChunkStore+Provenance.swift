import Foundation
internal import GRDB

/// A server version of a file, as a PROPFIND reports it: what a provenance record says the local bytes are.
public struct ServerVersion: Hashable, Sendable {
    public var fileid: String
    public var etag: String
    public var size: Int64
    /// Seconds since 1970, as Nextcloud reports `getlastmodified`.
    public var mtime: Int64

    public init(fileid: String, etag: String, size: Int64, mtime: Int64) {
        self.fileid = fileid
        self.etag = etag
        self.size = size
        self.mtime = mtime
    }
}

/// How a local file's bytes were established to be a server version's bytes.
public struct Provenance: Hashable, Sendable {
    public enum Source: String, Sendable, CaseIterable {
        /// Downloaded from the server (or through the swarm and compared with the server byte for byte).
        case download
        /// Uploaded from this file by this device; the server's answer named the version.
        case upload
        /// Compared with the server's bytes of that version, byte for byte.
        case comparison
    }

    public var path: String
    public var root: Hash256
    public var server: ServerVersion
    /// The file's guard when the bytes were established.
    public var guardValues: FileGuard
    public var source: Source
    /// When it was recorded, in seconds since 1970.
    public var recordedAt: Double
}

extension ChunkStore {
    /// Records that the indexed file at `path`, whose index entry names content root `root`, holds the bytes of
    /// `server` (DESIGN §4, "Provenance"). The guard stored is the one of the index entry (taken from the verified
    /// bytes themselves), and the file must still match it now: a file that changed since it was indexed is refused
    /// with `stale`, and a `root` that is not the index entry's is refused with `manifestMismatch`.
    public func recordProvenance(
        path: String, root: Hash256, server: ServerVersion, source: Provenance.Source
    ) throws(ChunkStoreError) {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        guard let current = FileGuard.of(path: absolute) else {
            throw .io(path: absolute, operation: "stat", errno: errno)
        }
        guard current.size == server.size else {
            throw .manifestMismatch("\(absolute) has \(current.size) bytes, the server version \(server.size)")
        }
        try run {
            try pool.write { db in
                guard
                    let row = try Row.fetchOne(
                        db,
                        sql: """
                            SELECT file.size, file.mtimeNs, file.inode, file.device, version.root
                            FROM file JOIN version ON version.id = file.versionId WHERE file.path = ?
                            """, arguments: [absolute])
                else { throw ChunkStoreError.stale(path: absolute) }
                let indexed = FileGuard(fileRow: row)
                guard indexed == current else { throw ChunkStoreError.stale(path: absolute) }
                guard Hash256(bytes: row["root"] as Data) == root else {
                    throw ChunkStoreError.manifestMismatch("\(absolute) is indexed with another content root")
                }
                try upsertProvenance(
                    path: absolute, root: root, server: server, guard: indexed, source: source, db: db)
            }
        }
    }

    /// Writes the provenance record of `path` (whose index entry has the guard `values`) in the transaction `db`.
    func upsertProvenance(
        path: String, root: Hash256, server: ServerVersion, guard values: FileGuard, source: Provenance.Source,
        db: Database
    ) throws {
        try db.execute(
            sql: """
                INSERT INTO provenance(path, root, fileid, etag, remoteSize, remoteMtime, size, mtimeNs,
                    inode, device, source, recordedAt)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(path) DO UPDATE SET root = excluded.root, fileid = excluded.fileid,
                    etag = excluded.etag, remoteSize = excluded.remoteSize,
                    remoteMtime = excluded.remoteMtime, size = excluded.size, mtimeNs = excluded.mtimeNs,
                    inode = excluded.inode, device = excluded.device, source = excluded.source,
                    recordedAt = excluded.recordedAt
                """,
            arguments: [
                path, Data(root.bytes), server.fileid, server.etag, server.size, server.mtime,
                values.size, values.mtimeNanoseconds, Int64(bitPattern: values.inode),
                Int64(bitPattern: values.device), source.rawValue, Date().timeIntervalSince1970,
            ])
    }

    /// The provenance record of the file at `path`, whether or not the file still matches it.
    public func provenance(path: String) throws(ChunkStoreError) -> Provenance? {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        return try run {
            try pool.read { db -> Provenance? in
                guard
                    let row = try Row.fetchOne(
                        db, sql: "SELECT * FROM provenance WHERE path = ?", arguments: [absolute])
                else { return nil }
                guard let root = Hash256(bytes: row["root"] as Data),
                    let source = Provenance.Source(rawValue: row["source"])
                else { throw ChunkStoreError.database("a provenance row of \(absolute) is malformed") }
                return Provenance(
                    path: absolute, root: root,
                    server: ServerVersion(
                        fileid: row["fileid"], etag: row["etag"], size: row["remoteSize"], mtime: row["remoteMtime"]),
                    guardValues: FileGuard(fileRow: row),
                    source: source, recordedAt: row["recordedAt"])
            }
        }
    }

    /// The provenance of the file at `path` if the file is unchanged since it was recorded (same size, mtime, inode
    /// and device) and the record names `fileid` and `etag`; nil otherwise. This is the test `seed` applies before it
    /// publishes a sidecar for a local file.
    public func establishedProvenance(
        path: String, fileid: String, etag: String
    ) throws(ChunkStoreError) -> Provenance? {
        guard let record = try provenance(path: path), record.server.fileid == fileid, record.server.etag == etag,
            FileGuard.of(path: record.path) == record.guardValues
        else { return nil }
        return record
    }

    /// Forgets the provenance of the file at `path` (it was found to differ from the server, or was deleted).
    public func forgetProvenance(path: String) throws(ChunkStoreError) {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        try run {
            try pool.write { db in
                try db.execute(sql: "DELETE FROM provenance WHERE path = ?", arguments: [absolute])
            }
        }
    }
}
