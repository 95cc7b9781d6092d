import Glibc

/// What identifies the bytes of a file on disk without reading them: if any of these change, the file is re-indexed.
public struct FileGuard: Hashable, Sendable, Codable {
    public var size: Int64
    public var mtimeNanoseconds: Int64
    public var inode: UInt64
    public var device: UInt64
}

/// A thin owner of a POSIX file descriptor: every call checks its result and throws `ChunkStoreError.io`.
///
/// Not shared between threads except for `pread`/`pwrite`, which the kernel makes safe on one descriptor.
final class FileDescriptor: @unchecked Sendable {
    // @unchecked: `fd` is immutable; positional I/O on one descriptor from several threads is safe.
    let fd: Int32
    let path: String

    init(path: String, flags: Int32, mode: mode_t = 0o644) throws(ChunkStoreError) {
        let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .io(path: path, operation: "open", errno: errno) }
        self.fd = fd
        self.path = path
    }

    deinit { _ = Glibc.close(fd) }

    /// The guard values of the open file (fstat on the descriptor, so there is no race with a rename).
    func guardValues() throws(ChunkStoreError) -> FileGuard {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .io(path: path, operation: "stat", errno: errno) }
        return FileGuard(st)
    }

    /// Reads up to `count` bytes at `offset`, retrying short reads until `count` or end of file.
    func read(into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int64) throws(ChunkStoreError) -> Int {
        var done = 0
        while done < count {
            let n = pread(fd, buffer + done, count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(path: path, operation: "read", errno: errno)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Reads `count` bytes at `offset` into a new array, shorter only at end of file.
    func readBytes(count: Int, at offset: Int64) throws(ChunkStoreError) -> [UInt8] {
        guard count > 0 else { return [] }
        var outcome: Result<Int, ChunkStoreError> = .success(0)
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            do throws(ChunkStoreError) {
                initialized = try read(into: UnsafeMutableRawPointer(buffer.baseAddress!), count: count, at: offset)
            } catch {
                initialized = 0
                outcome = .failure(error)
            }
        }
        _ = try outcome.get()
        return bytes
    }

    /// Sequential read (used when indexing: the kernel's read-ahead follows it).
    func readSequential(into buffer: UnsafeMutableRawPointer, count: Int) throws(ChunkStoreError) -> Int {
        var done = 0
        while done < count {
            let n = Glibc.read(fd, buffer + done, count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(path: path, operation: "read", errno: errno)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Writes all of `bytes` at `offset`; a full disk is reported as `diskFull`.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(ChunkStoreError) {
        try write(segments: [bytes], at: offset)
    }

    /// Most segments one `pwritev` takes (Linux's `IOV_MAX`); longer lists go in several calls.
    static let maxSegmentsPerCall = 1024

    /// Writes the segments one after the other from `offset`, with `pwritev` (one system call for a chunk kept as the
    /// blocks it arrived in, instead of a copy into one buffer first). A short write continues where it stopped; a
    /// full disk is reported as `diskFull`.
    func write(segments: [UnsafeRawBufferPointer], at offset: Int64) throws(ChunkStoreError) {
        var vectors = segments.compactMap { segment in
            segment.baseAddress.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0), iov_len: segment.count) }
        }
        var first = 0
        var position = off_t(offset)
        while first < vectors.count {
            let count = min(vectors.count - first, Self.maxSegmentsPerCall)
            let n = vectors.withUnsafeBufferPointer { pwritev(fd, $0.baseAddress! + first, Int32(count), position) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == ENOSPC || errno == EDQUOT { throw .diskFull(path: path) }
                throw .io(path: path, operation: "write", errno: errno)
            }
            guard n > 0 else { throw .io(path: path, operation: "write", errno: EIO) }
            position += off_t(n)
            // Skip what was written: whole segments, then the written front of a partly written one.
            var left = n
            while left > 0, first < vectors.count {
                if left >= vectors[first].iov_len {
                    left -= vectors[first].iov_len
                    first += 1
                } else {
                    vectors[first].iov_base += left
                    vectors[first].iov_len -= left
                    left = 0
                }
            }
            while first < vectors.count, vectors[first].iov_len == 0 { first += 1 }
        }
    }

    func truncate(to size: Int64) throws(ChunkStoreError) {
        guard ftruncate(fd, off_t(size)) == 0 else {
            if errno == ENOSPC || errno == EDQUOT { throw .diskFull(path: path) }
            throw .io(path: path, operation: "truncate", errno: errno)
        }
    }

    /// Makes written data durable (fdatasync).
    func sync() throws(ChunkStoreError) {
        guard fdatasync(fd) == 0 else {
            if errno == ENOSPC || errno == EDQUOT { throw .diskFull(path: path) }
            throw .io(path: path, operation: "fsync", errno: errno)
        }
    }

    /// The first offset at or after `offset` that holds data, or nil if only a hole follows (SEEK_DATA).
    func nextData(from offset: Int64) -> Int64? {
        let r = lseek(fd, off_t(offset), 3 /* SEEK_DATA */)
        return r < 0 ? nil : Int64(r)
    }

    /// The first hole at or after `offset` (SEEK_HOLE); the end of the file counts as a hole.
    func nextHole(from offset: Int64) -> Int64? {
        let r = lseek(fd, off_t(offset), 4 /* SEEK_HOLE */)
        return r < 0 ? nil : Int64(r)
    }
}

extension FileGuard {
    init(_ st: stat) {
        self.init(
            size: Int64(st.st_size),
            mtimeNanoseconds: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec),
            inode: UInt64(st.st_ino),
            device: UInt64(st.st_dev)
        )
    }

    /// The guard of the file at `path` (following symlinks), or nil if it cannot be stat'ed.
    static func of(path: String) -> FileGuard? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileGuard(st)
    }
}

enum FileSystem {
    /// Renames atomically and makes the rename durable by syncing the directory.
    static func renameDurably(from: String, to: String) throws(ChunkStoreError) {
        guard rename(from, to) == 0 else { throw .io(path: to, operation: "rename", errno: errno) }
        let directory = parentDirectory(of: to)
        let fd = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            _ = fsync(fd)
            _ = Glibc.close(fd)
        }
    }

    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Bytes available to this user on the file system holding `path`, or nil if unknown.
    static func availableBytes(at path: String) -> Int64? {
        var st = statvfs()
        guard statvfs(path, &st) == 0 else { return nil }
        return Int64(st.f_bavail) * Int64(st.f_frsize)
    }

    static func remove(_ path: String) {
        _ = unlink(path)
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }
}
