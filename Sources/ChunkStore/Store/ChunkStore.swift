import Foundation
internal import GRDB
public import Logging

/// The local chunk store: an SQLite index (WAL) of versions, their manifests, chunk reference counts, where chunk
/// bytes can be read on disk, and the state of downloads in progress.
///
/// Chunk bytes of an indexed file stay in that file; the index remembers the file's size, mtime and inode, and every
/// read re-checks them, so a changed file is re-indexed rather than served stale. All methods are synchronous and may
/// block on disk: call them off the event loop and off the cooperative thread pool for large files.
public final class ChunkStore: Sendable {
    /// Path of the SQLite database.
    public let path: String
    let pool: DatabasePool
    let logger: Logger

    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    public init(path: String, logger: Logger = Logger(label: "harp.chunkstore")) throws(ChunkStoreError) {
        self.path = path
        self.logger = logger
        do {
            var configuration = Configuration()
            configuration.prepareDatabase { db in
                // WAL + NORMAL: a commit survives a process crash; a power loss may drop the last commits, which the
                // download sink recovers by re-verifying the partial file (see DownloadSink).
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
            }
            configuration.busyMode = .timeout(10)
            pool = try DatabasePool(path: path, configuration: configuration)
            try Schema.migrator.migrate(pool)
        } catch {
            throw .database(String(describing: error))
        }
    }

    /// Runs `body`, mapping database errors to `ChunkStoreError.database` and passing store errors through.
    func run<T>(_ body: () throws -> T) throws(ChunkStoreError) -> T {
        do {
            return try body()
        } catch let error as ChunkStoreError {
            throw error
        } catch {
            throw .database(String(describing: error))
        }
    }

    // MARK: Versions

    /// Records a version and its manifest if not yet known; returns its row id.
    func insertVersion(_ manifest: Manifest, root: Hash256, db: Database) throws -> Int64 {
        let rootBlob = Data(root.bytes)
        if let id = try Int64.fetchOne(db, sql: "SELECT id FROM version WHERE root = ?", arguments: [rootBlob]) {
            return id
        }
        let parameters = String(decoding: try JSONEncoder().encode(manifest.parameters), as: UTF8.self)
        try db.execute(
            sql: "INSERT INTO version(root, size, chunkCount, parameters, createdAt) VALUES (?, ?, ?, ?, ?)",
            arguments: [rootBlob, manifest.size, manifest.chunks.count, parameters, Date().timeIntervalSince1970])
        let id = db.lastInsertedRowID
        let statement = try db.makeStatement(
            sql: "INSERT INTO versionChunk(versionId, idx, chunkHash, offset, length) VALUES (?, ?, ?, ?, ?)")
        for (index, chunk) in manifest.chunks.enumerated() {
            try statement.execute(arguments: [
                id, index, Data(chunk.hash.bytes), manifest.offsets[index], chunk.length,
            ])
        }
        return id
    }

    /// Records a version received from elsewhere (after checking it against `root`); returns nothing new if known.
    public func addVersion(_ manifest: Manifest, root: Hash256) throws(ChunkStoreError) {
        try manifest.verify(root: root)
        try run { try pool.write { db in _ = try insertVersion(manifest, root: root, db: db) } }
    }

    /// The manifest of a known version, or nil.
    public func manifest(root: Hash256) throws(ChunkStoreError) -> Manifest? {
        try run {
            try pool.read { db in
                guard
                    let row = try Row.fetchOne(
                        db, sql: "SELECT id, parameters FROM version WHERE root = ?", arguments: [Data(root.bytes)])
                else { return nil }
                return try loadManifest(versionId: row["id"], parametersJSON: row["parameters"], db: db)
            }
        }
    }

    func loadManifest(versionId: Int64, parametersJSON: String, db: Database) throws -> Manifest {
        let parameters = try JSONDecoder().decode(ChunkingParameters.self, from: Data(parametersJSON.utf8))
        var chunks = [ChunkRef]()
        let rows = try Row.fetchCursor(
            db, sql: "SELECT chunkHash, length FROM versionChunk WHERE versionId = ? ORDER BY idx",
            arguments: [versionId])
        while let row = try rows.next() {
            let blob: Data = row["chunkHash"]
            guard let hash = Hash256(bytes: blob) else { throw ChunkStoreError.database("corrupt chunk hash") }
            chunks.append(ChunkRef(hash: hash, length: row["length"]))
        }
        return try Manifest(parameters: parameters, chunks: chunks)
    }

    /// Deletes versions that no file and no download refers to (their chunks' reference counts drop with them).
    func deleteOrphanVersions(db: Database) throws {
        try db.execute(
            sql: """
                DELETE FROM version WHERE id NOT IN (SELECT versionId FROM file)
                AND id NOT IN (SELECT versionId FROM download)
                """)
    }

    // MARK: Statistics

    /// Counts of what the store holds.
    public struct Statistics: Sendable, Codable, Equatable {
        public var versions: Int
        public var chunks: Int
        public var files: Int
        public var downloads: Int
        /// Sum of the sizes of the indexed files.
        public var indexedBytes: Int64
    }

    /// What the store holds now.
    public func statistics() throws(ChunkStoreError) -> Statistics {
        try run {
            try pool.read { db in
                Statistics(
                    versions: try Int.fetchOne(db, sql: "SELECT count(*) FROM version") ?? 0,
                    chunks: try Int.fetchOne(db, sql: "SELECT count(*) FROM chunk") ?? 0,
                    files: try Int.fetchOne(db, sql: "SELECT count(*) FROM file") ?? 0,
                    downloads: try Int.fetchOne(db, sql: "SELECT count(*) FROM download") ?? 0,
                    indexedBytes: try Int64.fetchOne(db, sql: "SELECT coalesce(sum(size), 0) FROM file") ?? 0
                )
            }
        }
    }

    /// The reference count of a chunk (0 when unknown): how many manifest entries over all versions name it.
    public func referenceCount(of hash: Hash256) throws(ChunkStoreError) -> Int {
        try run {
            try pool.read { db in
                try Int.fetchOne(db, sql: "SELECT refCount FROM chunk WHERE hash = ?", arguments: [Data(hash.bytes)])
                    ?? 0
            }
        }
    }
}
