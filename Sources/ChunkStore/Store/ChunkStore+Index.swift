import Foundation
internal import GRDB
import Logging

/// What indexing one file produced.
public struct IndexOutcome: Sendable, Codable, Equatable {
    /// Absolute path of the file.
    public var path: String
    public var size: Int64
    public var chunkCount: Int
    /// The content root R.
    public var root: Hash256
    public var parameters: ChunkingParameters
    /// True when the file's guard matched its index entry, so nothing was read.
    public var reused: Bool
    /// Wall-clock seconds spent.
    public var seconds: Double
}

extension ChunkStore {
    /// Indexes the file at `path`: reuses the entry when size, mtime and inode are unchanged, else reads it once.
    ///
    /// A file that changes while it is read is read again (twice at most) and then reported as `stale`.
    public func index(
        file path: String,
        parameters: ChunkingParameters = .default
    ) throws(ChunkStoreError) -> IndexOutcome {
        let start = ContinuousClock.now
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        guard let current = FileGuard.of(path: absolute) else {
            throw .io(path: absolute, operation: "stat", errno: errno)
        }
        if let cached = try cachedOutcome(path: absolute, guard: current, parameters: parameters) {
            return cached
        }
        let chunker = try FastCDC(parameters: parameters)
        for _ in 0..<3 {
            let result = try FileIndexer(chunker: chunker).index(path: absolute)
            guard result.guardBefore == result.guardAfter else {
                logger.info("file changed while indexing, reading again", metadata: ["file.path": "\(absolute)"])
                continue
            }
            let manifest = result.manifest
            let root = manifest.root
            try record(path: absolute, guard: result.guardAfter, manifest: manifest, root: root)
            let seconds = (ContinuousClock.now - start).seconds
            logger.debug(
                "indexed file",
                metadata: ["file.path": "\(absolute)", "chunks": "\(manifest.chunks.count)", "root": "\(root.hex)"])
            return IndexOutcome(
                path: absolute, size: manifest.size, chunkCount: manifest.chunks.count, root: root,
                parameters: parameters, reused: false, seconds: seconds)
        }
        throw .stale(path: absolute)
    }

    private func cachedOutcome(
        path: String,
        guard current: FileGuard,
        parameters: ChunkingParameters
    ) throws(ChunkStoreError) -> IndexOutcome? {
        let start = ContinuousClock.now
        return try run {
            try pool.read { db -> IndexOutcome? in
                guard
                    let row = try Row.fetchOne(
                        db,
                        sql: """
                            SELECT file.size, file.mtimeNs, file.inode, file.device, version.root,
                                   version.chunkCount, version.parameters
                            FROM file JOIN version ON version.id = file.versionId WHERE file.path = ?
                            """, arguments: [path])
                else { return nil }
                let stored = FileGuard(fileRow: row)
                let storedParameters = try JSONDecoder().decode(
                    ChunkingParameters.self, from: Data((row["parameters"] as String).utf8))
                let rootBlob: Data = row["root"]
                guard stored == current, storedParameters == parameters, let root = Hash256(bytes: rootBlob) else {
                    return nil
                }
                return IndexOutcome(
                    path: path, size: stored.size, chunkCount: row["chunkCount"], root: root, parameters: parameters,
                    reused: true, seconds: (ContinuousClock.now - start).seconds)
            }
        }
    }

    /// Records (or replaces) the index entry of a file in one transaction, dropping versions nothing refers to.
    func record(path: String, guard values: FileGuard, manifest: Manifest, root: Hash256) throws(ChunkStoreError) {
        try run {
            try pool.write { db in
                let versionId = try insertVersion(manifest, root: root, db: db)
                try upsertFile(path: path, guard: values, versionId: versionId, db: db)
                try deleteOrphanVersions(db: db)
            }
        }
    }

    func upsertFile(path: String, guard values: FileGuard, versionId: Int64, db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO file(path, versionId, size, mtimeNs, inode, device, indexedAt)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(path) DO UPDATE SET versionId = excluded.versionId, size = excluded.size,
                    mtimeNs = excluded.mtimeNs, inode = excluded.inode, device = excluded.device,
                    indexedAt = excluded.indexedAt
                """,
            arguments: [
                path, versionId, values.size, values.mtimeNanoseconds, Int64(bitPattern: values.inode),
                Int64(bitPattern: values.device), Date().timeIntervalSince1970,
            ])
    }

    /// Removes a file's index entry (for example when it was deleted).
    public func forget(file path: String) throws(ChunkStoreError) {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        try run {
            try pool.write { db in
                try db.execute(sql: "DELETE FROM file WHERE path = ?", arguments: [absolute])
                try db.execute(sql: "DELETE FROM provenance WHERE path = ?", arguments: [absolute])
                try deleteOrphanVersions(db: db)
            }
        }
    }
}

extension Duration {
    /// The duration in seconds as a Double.
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) / 1e18
    }
}
