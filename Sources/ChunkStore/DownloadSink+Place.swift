import Foundation
internal import GRDB
import Glibc
import Synchronization

extension DownloadSink {
    /// One file to write out of a finished download that holds several files one after the other (a folder's bundle).
    public struct Placement: Sendable {
        /// The file's absolute path; its folder must exist.
        public var destination: String
        /// The chunks of this download that make the file, in order.
        public var chunks: Range<Int>
        /// The file's own content root, which those chunks must hash to.
        public var root: Hash256
        /// The server version the bytes are, recorded as the file's provenance (downloaded as it), if any.
        public var server: ServerVersion?

        public init(destination: String, chunks: Range<Int>, root: Hash256, server: ServerVersion?) {
            self.destination = destination
            self.chunks = chunks
            self.root = root
            self.server = server
        }
    }

    /// Writes each placement as a file of its own from this download's recorded chunks: every chunk read back and
    /// hashed again, the file written to `NAME.harp-part` (a leftover or symbolic link at that name removed, never
    /// followed), synced, checked against its root, and renamed into place in its folder; then one transaction indexes
    /// every file and records its provenance, and each folder is synced once.
    ///
    /// Per file this costs one `fdatasync`, where a download of its own costs several syncs and transactions: for
    /// thousands of small files, the difference is most of the time. Files renamed before a failure are still indexed;
    /// the error is rethrown. Returns the paths placed.
    @discardableResult
    public func place(_ placements: [Placement]) throws(ChunkStoreError) -> [String] {
        try flush()
        let recorded = state.withLock { $0.recorded }
        // Each file costs one fdatasync, which waits for the disk: several run at once (a disk's flushes overlap and a
        // journal commit can carry several), in threads of their own, each with its own open folders.
        let workers = min(Self.placementWorkers, placements.count)
        let outcomes = Mutex<[Int: Result<PlacedFile, ChunkStoreError>]>([:])
        let group = DispatchGroup()
        for worker in 0..<workers {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                var folders: [String: FileDescriptor] = [:]
                for index in stride(from: worker, to: placements.count, by: workers) {
                    let result = Result { () throws(ChunkStoreError) -> PlacedFile in
                        try self.placeOne(placements[index], recorded: recorded, folders: &folders)
                    }
                    outcomes.withLock { $0[index] = result }
                }
            }
            thread.start()
        }
        group.wait()
        let results = outcomes.withLock { $0 }
        var placed: [PlacedFile] = []
        var failure: ChunkStoreError?
        for index in placements.indices {
            switch results[index] {
            case .success(let file)?: placed.append(file)
            case .failure(let error)?: failure = failure ?? error
            case nil: failure = failure ?? .incomplete(missing: placements[index].chunks.count)
            }
        }
        // Each folder once, after every rename in it and before the index names the files.
        for folder in Set(placed.map { FileSystem.parentDirectory(of: $0.path) }) {
            if let descriptor = try? FileDescriptor(path: folder, flags: O_RDONLY | O_DIRECTORY) {
                _ = fsync(descriptor.fd)
            }
        }
        try store.run {
            try store.pool.write { db in
                for file in placed {
                    let versionId = try store.insertVersion(file.manifest, root: file.root, db: db)
                    try store.upsertFile(path: file.path, guard: file.guard, versionId: versionId, db: db)
                    if let server = file.server {
                        try store.upsertProvenance(
                            path: file.path, root: file.root, server: server, guard: file.guard, source: .download,
                            db: db)
                    }
                }
            }
        }
        if let failure { throw failure }
        return placed.map(\.path)
    }

    /// Files written at once by `place`.
    static let placementWorkers = 8

    struct PlacedFile: Sendable {
        var path: String
        var manifest: Manifest
        var root: Hash256
        var `guard`: FileGuard
        var server: ServerVersion?
    }

    private func placeOne(
        _ placement: Placement, recorded: [Bool], folders: inout [String: FileDescriptor]
    ) throws(ChunkStoreError) -> PlacedFile {
        guard placement.chunks.lowerBound >= 0, placement.chunks.upperBound <= manifest.chunks.count,
            !placement.chunks.isEmpty
        else {
            throw .manifestMismatch("chunks \(placement.chunks) are not in the download's \(manifest.chunks.count)")
        }
        guard placement.chunks.allSatisfy({ recorded[$0] }) else {
            throw .incomplete(missing: placement.chunks.filter { !recorded[$0] }.count)
        }
        let fileManifest = try Manifest(
            parameters: manifest.parameters, chunks: Array(manifest.chunks[placement.chunks]))
        try fileManifest.verify(root: placement.root)
        let destination = URL(fileURLWithPath: placement.destination).standardizedFileURL.path
        let folderPath = FileSystem.parentDirectory(of: destination)
        let folder: FileDescriptor
        if let open = folders[folderPath] {
            folder = open
        } else {
            folder = try FileDescriptor(path: folderPath, flags: O_RDONLY | O_DIRECTORY)
            folders[folderPath] = folder
        }
        let values = try write(placement.chunks, of: fileManifest, to: destination, in: folder)
        return PlacedFile(
            path: destination, manifest: fileManifest, root: placement.root, guard: values, server: placement.server)
    }

    /// Writes one file from chunks `range` of this download; returns its guard after the rename.
    private func write(
        _ range: Range<Int>, of fileManifest: Manifest, to destination: String, in folder: FileDescriptor
    ) throws(ChunkStoreError) -> FileGuard {
        let name = String(destination.split(separator: "/").last ?? "")
        let partName = name + ".harp-part"
        _ = unlinkat(folder.fd, partName, 0)
        let fd = openat(folder.fd, partName, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io(path: destination + ".harp-part", operation: "open", errno: errno) }
        var closed = false
        defer { if !closed { close(fd) } }
        var offset: Int64 = 0
        for index in range {
            let chunk = manifest.chunks[index]
            let bytes = try file.readBytes(count: chunk.length, at: manifest.offsets[index])
            let actual = Hash256.sha256(bytes)
            guard bytes.count == chunk.length, actual == chunk.hash else {
                _ = unlinkat(folder.fd, partName, 0)
                throw .chunkMismatch(index: index, expected: chunk.hash, actual: actual)
            }
            var done = 0
            while done < bytes.count {
                let n = bytes.withUnsafeBytes { buffer in
                    pwrite(fd, buffer.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
                }
                guard n > 0 else {
                    let code = errno
                    _ = unlinkat(folder.fd, partName, 0)
                    throw code == ENOSPC
                        ? .diskFull(path: destination) : .io(path: destination, operation: "write", errno: code)
                }
                done += n
            }
            offset += Int64(chunk.length)
        }
        var st = stat()
        guard fdatasync(fd) == 0, fstat(fd, &st) == 0 else {
            let code = errno
            _ = unlinkat(folder.fd, partName, 0)
            throw .io(path: destination, operation: "sync", errno: code)
        }
        close(fd)
        closed = true
        guard Int64(st.st_size) == fileManifest.size else {
            _ = unlinkat(folder.fd, partName, 0)
            throw .manifestMismatch("\(destination): wrote \(st.st_size) of \(fileManifest.size) bytes")
        }
        guard renameat(folder.fd, partName, folder.fd, name) == 0 else {
            throw .io(path: destination, operation: "rename", errno: errno)
        }
        return FileGuard(st)
    }
}
