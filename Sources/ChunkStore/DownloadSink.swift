import Foundation
internal import GRDB
import Glibc
import Logging
import Synchronization

/// Writes one version of a file into `DESTINATION.harp-part`, in any order, and renames it into place once the whole
/// version verifies against its content root.
///
/// Durability: a chunk is recorded in SQLite only after its bytes were made durable with `fdatasync`, so the index
/// never claims a chunk the partial file does not hold. Chunks are recorded in batches (`Durability`); a crash loses
/// at most the records of one batch, and reopening re-verifies the data regions of the partial file that are not
/// recorded (found with SEEK_DATA), so after `kill -9` no chunk whose bytes reached the file is fetched again.
///
/// Thread safety: `write` may be called from several threads at once; the state is behind a mutex.
public final class DownloadSink: Sendable {
    /// How often written chunks are synced and recorded.
    public struct Durability: Sendable {
        /// Record after this many chunks are pending...
        public var maxPendingChunks: Int
        /// ...or this many bytes, whichever comes first.
        public var maxPendingBytes: Int
        /// Sync and record after every chunk (slow; for tests and tiny files).
        public static let everyChunk = Durability(maxPendingChunks: 1, maxPendingBytes: 1)
        /// The default: every 32 chunks or 64 MiB.
        public static let batched = Durability(maxPendingChunks: 32, maxPendingBytes: 64 << 20)
        public init(maxPendingChunks: Int, maxPendingBytes: Int) {
            self.maxPendingChunks = maxPendingChunks
            self.maxPendingBytes = maxPendingBytes
        }
    }

    struct State {
        /// Chunks whose bytes are durable and recorded in the index.
        var recorded: [Bool]
        /// Chunks written (after verification) but not yet synced and recorded.
        var pending: [Int] = []
        var pendingBytes = 0
        /// Chunks that were verified in memory by this process before they were written.
        var verifiedHere: [Bool]
        var recordedCount = 0
        var finished = false
    }

    public let manifest: Manifest
    public let root: Hash256
    public let destination: String
    public let partPath: String
    let downloadId: Int64
    let versionId: Int64
    let file: FileDescriptor
    /// The folder of the destination, opened when the download was: the partial file was checked to be in it, and the
    /// final rename happens in it (`renameat`), so a folder on the way swapped for a symbolic link meanwhile cannot
    /// send the file elsewhere.
    let directory: FileDescriptor
    let store: ChunkStore
    let durability: Durability
    let state: Mutex<State>
    /// Held while a chunk is written into the partial file. The kernel writes one file's pages one writer at a time
    /// anyway (ext4 takes the inode's lock), and two pool threads writing at once spun on that lock, 5 % of a
    /// loopback fetcher's CPU. A plain pthread mutex (`NSLock`) makes the second writer sleep; `Mutex` (a
    /// priority-inheritance futex) spun in the kernel just the same (docs/benchmarks.md, "One-to-one, third part").
    /// Hashing stays parallel.
    let writing = NSLock()

    init(
        store: ChunkStore, manifest: Manifest, root: Hash256, destination: String, partPath: String,
        downloadId: Int64, versionId: Int64, file: FileDescriptor, directory: FileDescriptor, recorded: [Bool],
        durability: Durability
    ) {
        self.store = store
        self.manifest = manifest
        self.root = root
        self.destination = destination
        self.partPath = partPath
        self.downloadId = downloadId
        self.versionId = versionId
        self.file = file
        self.directory = directory
        self.durability = durability
        var initial = State(recorded: recorded, verifiedHere: Array(repeating: false, count: recorded.count))
        initial.recordedCount = recorded.lazy.filter { $0 }.count
        self.state = Mutex(initial)
    }

    /// Number of chunks in the version.
    public var chunkCount: Int { manifest.chunks.count }

    /// Whether chunk `index` is already written (recorded or pending).
    public func has(_ index: Int) -> Bool {
        state.withLock { $0.recorded[index] || $0.pending.contains(index) }
    }

    /// Indexes of the chunks still needed, in order.
    public var missing: [Int] {
        state.withLock { s in
            let pending = Set(s.pending)
            return (0..<s.recorded.count).filter { !s.recorded[$0] && !pending.contains($0) }
        }
    }

    /// Indexes of the chunks durably recorded.
    public var recordedChunks: [Int] {
        state.withLock { s in (0..<s.recorded.count).filter { s.recorded[$0] } }
    }

    /// Bytes of the chunks written so far.
    public var bytesWritten: Int64 {
        state.withLock { s in
            var total: Int64 = 0
            for i in 0..<s.recorded.count where s.recorded[i] { total += Int64(manifest.chunks[i].length) }
            for i in s.pending { total += Int64(manifest.chunks[i].length) }
            return total
        }
    }

    /// Verifies `bytes` against chunk `index` and writes them at the chunk's offset.
    ///
    /// Throws `chunkMismatch` (nothing is written) if the bytes do not hash to the chunk's hash or have the wrong
    /// length. Writing a chunk that is already written is a no-op. Returns whether the bytes were new.
    @discardableResult
    public func write(index: Int, bytes: UnsafeRawBufferPointer) throws(ChunkStoreError) -> Bool {
        try write(index: index, segments: [bytes])
    }

    /// Verifies the segments, one after the other, against chunk `index` and writes them at the chunk's offset with
    /// one `pwritev`: a chunk kept as the blocks it arrived in is hashed and written without being copied into one
    /// buffer first. As `write(index:bytes:)` otherwise.
    @discardableResult
    public func write(index: Int, segments: [UnsafeRawBufferPointer]) throws(ChunkStoreError) -> Bool {
        guard index >= 0, index < manifest.chunks.count else {
            throw .chunkIndexOutOfRange(index, count: manifest.chunks.count)
        }
        let expected = manifest.chunks[index]
        let count = segments.reduce(0) { $0 + $1.count }
        let actual = Hash256.sha256(segments: segments)
        guard count == expected.length, actual == expected.hash else {
            throw .chunkMismatch(index: index, expected: expected.hash, actual: actual)
        }
        if has(index) { return false }
        do {
            writing.lock()
            defer { writing.unlock() }
            try file.write(segments: segments, at: manifest.offsets[index])
        }
        let needsFlush = state.withLock { s -> Bool in
            guard !s.recorded[index], !s.pending.contains(index) else { return false }
            s.pending.append(index)
            s.pendingBytes += count
            s.verifiedHere[index] = true
            return s.pending.count >= durability.maxPendingChunks || s.pendingBytes >= durability.maxPendingBytes
        }
        if needsFlush { try flush() }
        return true
    }

    /// Reads chunk `index` from the partial file into `buffer` (exactly the chunk's length) if it is written, to serve
    /// it to peers before the download ends; false if it is not written yet.
    public func readChunk(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws(ChunkStoreError) -> Bool {
        guard index >= 0, index < manifest.chunks.count, has(index), buffer.count == manifest.chunks[index].length,
            buffer.count > 0
        else { return false }
        let count = try file.read(into: buffer.baseAddress!, count: buffer.count, at: manifest.offsets[index])
        guard count == buffer.count else { throw .io(path: file.path, operation: "read", errno: EIO) }
        return true
    }

    /// Writes a chunk given as an array; see `write(index:bytes:)`.
    @discardableResult
    public func write(index: Int, bytes: [UInt8]) throws(ChunkStoreError) -> Bool {
        let outcome = bytes.withUnsafeBytes { raw in
            Result { () throws(ChunkStoreError) -> Bool in try write(index: index, bytes: raw) }
        }
        return try outcome.get()
    }

    /// Syncs the partial file and records every pending chunk in one transaction.
    public func flush() throws(ChunkStoreError) {
        let batch = state.withLock { s -> [Int] in
            let batch = s.pending
            return batch
        }
        guard !batch.isEmpty else { return }
        try file.sync()
        try store.run {
            try store.pool.write { db in
                let statement = try db.makeStatement(
                    sql: "INSERT OR IGNORE INTO downloadChunk(downloadId, idx) VALUES (?, ?)")
                for index in batch { try statement.execute(arguments: [downloadId, index]) }
            }
        }
        state.withLock { s in
            let done = Set(batch)
            s.pending.removeAll { done.contains($0) }
            for index in batch where !s.recorded[index] {
                s.recorded[index] = true
                s.recordedCount += 1
                s.pendingBytes -= manifest.chunks[index].length
            }
        }
    }

    /// Copies into the partial file every missing chunk that the local store already holds (another version or
    /// another file); returns how many chunks were copied.
    ///
    /// One query finds which of the missing chunks have a local copy at all, so a version with nothing in common with
    /// the store costs no per-chunk lookups; each such chunk is read once, however often the version repeats it.
    @discardableResult
    public func adoptLocalChunks() throws(ChunkStoreError) -> Int {
        let local = try store.chunksWithLocalCopies(version: versionId, excludingDownload: downloadId)
        var indexesByHash: [Hash256: [Int]] = [:]
        for index in missing where local.contains(manifest.chunks[index].hash) {
            indexesByHash[manifest.chunks[index].hash, default: []].append(index)
        }
        var copied = 0
        for (hash, indexes) in indexesByHash {
            guard let bytes = try? store.readChunk(hash, verify: true) else { continue }
            for index in indexes where try write(index: index, bytes: bytes) { copied += 1 }
        }
        try flush()
        return copied
    }
}
