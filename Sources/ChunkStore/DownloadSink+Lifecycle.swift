import Foundation
internal import GRDB
import Glibc
import Logging

extension ChunkStore {
    /// Opens (or resumes) the download of `manifest` into `destination`.
    ///
    /// The manifest must verify against `root`. A previous partial download of the same version to the same
    /// destination is resumed: its recorded chunks are kept, and unrecorded data regions of the partial file are
    /// re-verified. A partial download of another version is discarded. Fails with `diskFull` at once when the file
    /// system has less free space than the missing bytes.
    public func openDownload(
        manifest: Manifest,
        root: Hash256,
        destination: String,
        durability: DownloadSink.Durability = .batched
    ) throws(ChunkStoreError) -> DownloadSink {
        try manifest.verify(root: root)
        let destination = URL(fileURLWithPath: destination).standardizedFileURL.path
        let partPath = destination + ".harp-part"
        let count = manifest.chunks.count

        let (knownVersionId, previous) = try run {
            try pool.write { db -> (Int64, (id: Int64, versionId: Int64, inode: UInt64)?) in
                let versionId = try insertVersion(manifest, root: root, db: db)
                let row = try Row.fetchOne(
                    db, sql: "SELECT id, versionId, partInode FROM download WHERE destination = ?",
                    arguments: [destination])
                return (versionId, row.map { ($0["id"], $0["versionId"], UInt64(bitPattern: $0["partInode"])) })
            }
        }

        var versionId = knownVersionId
        let directory = try FileDescriptor(
            path: FileSystem.parentDirectory(of: destination), flags: O_RDONLY | O_DIRECTORY)
        var recorded = Array(repeating: false, count: count)
        var downloadId: Int64
        var file: FileDescriptor
        if let previous, previous.versionId == versionId, let existing = FileGuard.of(path: partPath),
            existing.inode == previous.inode
        {
            file = try openPartFile(partPath, flags: O_RDWR)
            downloadId = previous.id
            let indexes = try run {
                try pool.read { db in
                    try Int.fetchAll(
                        db, sql: "SELECT idx FROM downloadChunk WHERE downloadId = ?", arguments: [previous.id])
                }
            }
            for index in indexes where index < count { recorded[index] = true }
            logger.info(
                "resuming download",
                metadata: ["file.path": "\(destination)", "chunks.recorded": "\(indexes.count)", "chunks": "\(count)"])
        } else {
            if previous != nil {
                FileSystem.remove(partPath)
                try run {
                    try pool.write { db in
                        try db.execute(sql: "DELETE FROM download WHERE destination = ?", arguments: [destination])
                    }
                }
            }
            file = try openPartFile(partPath, flags: O_RDWR | O_CREAT | O_TRUNC)
            let inode = try file.guardValues().inode
            // The version is looked up (or inserted) again in this transaction: another download finishing meanwhile
            // deletes versions nothing refers to, and this one had no download row yet.
            (versionId, downloadId) = try run {
                try pool.write { db in
                    let versionId = try insertVersion(manifest, root: root, db: db)
                    try db.execute(
                        sql: """
                            INSERT INTO download(versionId, destination, partPath, partInode, createdAt)
                            VALUES (?, ?, ?, ?, ?)
                            """,
                        arguments: [
                            versionId, destination, partPath, Int64(bitPattern: inode), Date().timeIntervalSince1970,
                        ])
                    return (versionId, db.lastInsertedRowID)
                }
            }
        }
        try Self.check(file, isNamed: lastName(of: partPath), in: directory)
        if try file.guardValues().size != manifest.size { try file.truncate(to: manifest.size) }
        try checkFreeSpace(file: file, manifest: manifest, recorded: recorded)
        let sink = DownloadSink(
            store: self, manifest: manifest, root: root, destination: destination, partPath: partPath,
            downloadId: downloadId, versionId: versionId, file: file, directory: directory, recorded: recorded,
            durability: durability)
        let recovered = try sink.recoverUnrecordedChunks()
        if recovered > 0 {
            logger.info("recovered chunks written before a crash", metadata: ["chunks": "\(recovered)"])
        }
        return sink
    }

    /// Opens the partial file without following a symbolic link at its name (`O_NOFOLLOW`), and only if it is a
    /// regular file: a link placed in the output folder by someone else would otherwise make the download truncate
    /// and overwrite whatever it points to.
    private func openPartFile(_ path: String, flags: Int32) throws(ChunkStoreError) -> FileDescriptor {
        let file: FileDescriptor
        do {
            file = try FileDescriptor(path: path, flags: flags | O_NOFOLLOW)
        } catch .io(_, _, let code) where code == ELOOP {
            throw .io(
                path: path, operation: "open (a symbolic link is in the way; harp does not follow it)", errno: code)
        }
        var st = stat()
        guard fstat(file.fd, &st) == 0 else { throw .io(path: path, operation: "stat", errno: errno) }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw .io(path: path, operation: "open (not a regular file; harp writes only regular files)", errno: EINVAL)
        }
        return file
    }

    /// Checks that `file` is the entry `name` of `directory` (same device and inode, not followed): then the folder
    /// held open is the one the partial file lies in, whatever happens to the path later.
    private static func check(
        _ file: FileDescriptor, isNamed name: String, in directory: FileDescriptor
    )
        throws(ChunkStoreError)
    {
        var opened = stat()
        var listed = stat()
        guard fstat(file.fd, &opened) == 0, fstatat(directory.fd, name, &listed, AT_SYMLINK_NOFOLLOW) == 0,
            opened.st_dev == listed.st_dev, opened.st_ino == listed.st_ino
        else {
            throw .io(
                path: file.path, operation: "open (the folder changed while the partial file was opened)",
                errno: EAGAIN)
        }
    }

    private func checkFreeSpace(file: FileDescriptor, manifest: Manifest, recorded: [Bool]) throws(ChunkStoreError) {
        var missing: Int64 = 0
        for (index, done) in recorded.enumerated() where !done { missing += Int64(manifest.chunks[index].length) }
        if let available = FileSystem.availableBytes(at: FileSystem.parentDirectory(of: file.path)),
            available < missing
        {
            throw .diskFull(path: file.path)
        }
    }

    /// The chunk hashes of `version` that can be read locally: from an indexed file, or recorded by another download.
    func chunksWithLocalCopies(version: Int64, excludingDownload: Int64) throws(ChunkStoreError) -> Set<Hash256> {
        try run {
            try pool.read { db in
                let blobs = try Data.fetchAll(
                    db,
                    sql: """
                        SELECT DISTINCT vc.chunkHash FROM versionChunk vc
                        WHERE vc.versionId = ? AND (
                            EXISTS (SELECT 1 FROM versionChunk other JOIN file ON file.versionId = other.versionId
                                    WHERE other.chunkHash = vc.chunkHash)
                            OR EXISTS (SELECT 1 FROM versionChunk other
                                    JOIN download d ON d.versionId = other.versionId AND d.id != ?
                                    JOIN downloadChunk dc ON dc.downloadId = d.id AND dc.idx = other.idx
                                    WHERE other.chunkHash = vc.chunkHash))
                        """, arguments: [version, excludingDownload])
                return Set(blobs.compactMap { Hash256(bytes: $0) })
            }
        }
    }
}

extension DownloadSink {
    /// Re-verifies unrecorded chunks whose range holds data in the partial file (SEEK_DATA skips holes, so a fresh
    /// sparse file costs nothing) and records the ones that match. Returns how many were recovered.
    func recoverUnrecordedChunks() throws(ChunkStoreError) -> Int {
        var candidates: [Int] = []
        let recorded = state.withLock { $0.recorded }
        for index in 0..<recorded.count where !recorded[index] {
            let range = manifest.range(of: index)
            guard let data = file.nextData(from: range.lowerBound), data < range.upperBound else { continue }
            candidates.append(index)
        }
        guard !candidates.isEmpty else { return 0 }
        var found: [Int] = []
        for index in candidates {
            let chunk = manifest.chunks[index]
            let bytes = try file.readBytes(count: chunk.length, at: manifest.offsets[index])
            if bytes.count == chunk.length, Hash256.sha256(bytes) == chunk.hash { found.append(index) }
        }
        guard !found.isEmpty else { return 0 }
        state.withLock { s in
            for index in found {
                s.pending.append(index)
                s.pendingBytes += manifest.chunks[index].length
            }
        }
        try flush()
        return found.count
    }

    /// Finishes the download: records what is pending, re-verifies from disk every chunk that an earlier process
    /// wrote, checks the manifest against the content root, syncs, and renames the partial file into place.
    ///
    /// Nothing is renamed unless all of that succeeds. A chunk found corrupt on disk is un-recorded (so it is fetched
    /// again) and the error is `chunkMismatch`. On success the finished file is indexed, ready to be served.
    @discardableResult
    public func finish() throws(ChunkStoreError) -> String {
        try flush()
        let snapshot = state.withLock { $0 }
        let missingCount = snapshot.recorded.lazy.filter { !$0 }.count
        guard missingCount == 0 else { throw .incomplete(missing: missingCount) }
        for index in 0..<manifest.chunks.count where !snapshot.verifiedHere[index] {
            let chunk = manifest.chunks[index]
            let bytes = try file.readBytes(count: chunk.length, at: manifest.offsets[index])
            let actual = Hash256.sha256(bytes)
            if bytes.count != chunk.length || actual != chunk.hash {
                try unrecord(index)
                throw .chunkMismatch(index: index, expected: chunk.hash, actual: actual)
            }
        }
        let actualRoot = manifest.root
        guard actualRoot == root else { throw .rootMismatch(expected: root, actual: actualRoot) }
        try file.sync()
        // In the folder held open since the download started, never through the path again.
        guard renameat(directory.fd, lastName(of: partPath), directory.fd, lastName(of: destination)) == 0 else {
            throw .io(path: destination, operation: "rename", errno: errno)
        }
        _ = fsync(directory.fd)
        let values = try file.guardValues()
        try store.run {
            try store.pool.write { db in
                try db.execute(sql: "DELETE FROM download WHERE id = ?", arguments: [downloadId])
                try store.upsertFile(path: destination, guard: values, versionId: versionId, db: db)
                try store.deleteOrphanVersions(db: db)
            }
        }
        state.withLock { $0.finished = true }
        return destination
    }

    private func unrecord(_ index: Int) throws(ChunkStoreError) {
        try store.run {
            try store.pool.write { db in
                try db.execute(
                    sql: "DELETE FROM downloadChunk WHERE downloadId = ? AND idx = ?", arguments: [downloadId, index])
            }
        }
        state.withLock { s in
            if s.recorded[index] {
                s.recorded[index] = false
                s.recordedCount -= 1
            }
        }
    }

    /// Gives up the download: deletes the partial file and its state.
    public func discard() throws(ChunkStoreError) {
        _ = unlinkat(directory.fd, lastName(of: partPath), 0)
        try store.run {
            try store.pool.write { db in
                try db.execute(sql: "DELETE FROM download WHERE id = ?", arguments: [downloadId])
                try store.deleteOrphanVersions(db: db)
            }
        }
    }
}

/// The last name of `path`.
private func lastName(of path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? path
}
