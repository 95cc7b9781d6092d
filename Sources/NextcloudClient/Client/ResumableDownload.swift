import Foundation
public import Logging

/// A resumable download of one version of a file: parallel Range requests with `If-Match` on its etag into
/// `NAME.harp-part`, with the finished blocks recorded next to it (after an fsync) so an interrupted download resumes
/// where it stopped. `finish()` renames the finished file into place.
///
/// The partial file is opened with `O_NOFOLLOW` in the destination's folder, held open by descriptor, and renamed
/// with `renameat` in that folder: a symbolic link at the partial file's name, or a folder on the way swapped for
/// one during the download, cannot send the bytes elsewhere.
public struct ResumableDownload: Sendable {
    /// Why a resumable download failed, beyond the errors of the requests themselves.
    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// The version changed on the server (a Range request's `If-Match` failed).
        case changedOnServer
        /// A local file could not be opened, written or renamed.
        case local(String)

        public var description: String {
            switch self {
            case .changedOnServer: "the file changed on the server during the download"
            case .local(let why): why
            }
        }
    }

    let client: NextcloudClient
    let remotePath: String
    let etag: String
    let size: Int64
    let destination: String
    /// The default bytes per Range request; a file no larger comes in one request whichever way it is fetched
    /// (`WholeFileDownload`).
    public static let defaultBlockSize: Int64 = 8 << 20
    /// Bytes per Range request.
    public var blockSize: Int64 = defaultBlockSize
    /// Range requests in flight at once.
    public var parallel = 4
    let logger: Logger
    /// Called with the bytes as they arrive (for progress).
    var progress: @Sendable (Int64) -> Void = { _ in }
    /// The destination's folder, opened once by `run`: the partial file is created in it and renamed in it, so a
    /// folder on the way swapped for a symbolic link during the download cannot send the file elsewhere.
    let folder = HeldFolder()

    /// A download of the version `etag` (of `size` bytes) of `remotePath` to the local path `destination`.
    public init(
        client: NextcloudClient, remotePath: String, etag: String, size: Int64, destination: String, logger: Logger,
        progress: @escaping @Sendable (Int64) -> Void = { _ in }
    ) {
        self.client = client
        self.remotePath = remotePath
        self.etag = etag
        self.size = size
        self.destination = destination
        self.logger = logger
        self.progress = progress
    }

    struct State: Codable {
        var etag: String
        var size: Int64
        var blockSize: Int64
        var done: [Int]
    }

    /// The partial file, `NAME.harp-part`.
    public var partPath: String { destination + ".harp-part" }
    /// The record of finished blocks, `NAME.harp-part.server`.
    public var statePath: String { destination + ".harp-part.server" }
    private var partName: String { (partPath as NSString).lastPathComponent }

    /// Fetches the whole file; returns how many bytes came from the server in this run. Throws
    /// `Failure.changedOnServer` when the version changed.
    public func run() async throws -> Int64 {
        let blockCount = Int((size + blockSize - 1) / blockSize)
        var done = Set<Int>()
        if let data = FileManager.default.contents(atPath: statePath),
            let state = try? JSONDecoder().decode(State.self, from: data),
            state.etag == etag, state.size == size, state.blockSize == blockSize,
            FileManager.default.fileExists(atPath: partPath)
        {
            done = Set(state.done.filter { $0 >= 0 && $0 < blockCount })
            logger.info(
                "resuming a server download", metadata: ["blocks.done": "\(done.count)", "blocks": "\(blockCount)"])
        } else {
            try? FileManager.default.removeItem(atPath: partPath)
            try? FileManager.default.removeItem(atPath: statePath)
        }
        // O_NOFOLLOW: a symbolic link placed at the partial file's name is refused, never written through.
        let fd = openat(
            try folder.descriptor(of: destination), partName, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let why =
                errno == ELOOP
                ? "a symbolic link is in the way; harp does not follow it" : String(cString: strerror(errno))
            throw Failure.local("cannot open \(partPath): \(why)")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw Failure.local("cannot open \(partPath): not a regular file")
        }
        guard ftruncate(fd, off_t(size)) == 0 else {
            throw Failure.local("cannot size \(partPath): \(String(cString: strerror(errno)))")
        }
        let record = BlockRecord(done: done)
        // What an earlier run fetched counts as progress from the start.
        progress(done.reduce(Int64(0)) { total, block in total + min(blockSize, size - Int64(block) * blockSize) })
        var fetched: Int64 = 0
        let todo = (0..<blockCount).filter { !done.contains($0) }
        try await withThrowingTaskGroup(of: Int64.self) { group in
            var iterator = todo.makeIterator()
            func addNext() {
                guard let block = iterator.next() else { return }
                group.addTask {
                    let offset = Int64(block) * blockSize
                    let length = min(blockSize, size - offset)
                    guard let range = ByteRange(offset: offset, length: length) else { return 0 }
                    do {
                        try await client.download(
                            remotePath, range: range, ifMatch: etag,
                            into: CountingSink(inner: FileRangeSink(descriptor: fd, offset: offset), count: progress))
                    } catch let error as NextcloudError where error.kind == .preconditionFailed {
                        throw Failure.changedOnServer
                    }
                    guard fdatasync(fd) == 0 else {
                        throw Failure.local("fdatasync: \(String(cString: strerror(errno)))")
                    }
                    try record.add(block, save: { try save($0) })
                    return length
                }
            }
            for _ in 0..<parallel { addNext() }
            while let bytes = try await group.next() {
                fetched += bytes
                addNext()
            }
        }
        guard fsync(fd) == 0 else { throw Failure.local("fsync: \(String(cString: strerror(errno)))") }
        return fetched
    }

    /// Renames the finished partial file into place and forgets its block record.
    public func finish() throws {
        let directory = try folder.descriptor(of: destination)
        guard renameat(directory, partName, directory, (destination as NSString).lastPathComponent) == 0 else {
            throw Failure.local("cannot rename into \(destination): \(String(cString: strerror(errno)))")
        }
        try? FileManager.default.removeItem(atPath: statePath)
    }

    /// Deletes the partial file and its record (the version changed on the server).
    public func discard() {
        try? FileManager.default.removeItem(atPath: partPath)
        try? FileManager.default.removeItem(atPath: statePath)
    }

    private func save(_ done: Set<Int>) throws {
        let state = State(etag: etag, size: size, blockSize: blockSize, done: done.sorted())
        let data = try JSONEncoder().encode(state)
        let temporary = statePath + ".tmp"
        let directory = try folder.descriptor(of: destination)
        let temporaryName = (temporary as NSString).lastPathComponent
        unlinkat(directory, temporaryName, 0)
        let fd = openat(directory, temporaryName, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure.local("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        let stateName = (statePath as NSString).lastPathComponent
        guard written == data.count, renameat(directory, temporaryName, directory, stateName) == 0 else {
            throw Failure.local("cannot write \(statePath)")
        }
    }
}

/// Passes bytes on and counts them as they arrive (for progress).
private struct CountingSink: ByteSink {
    let inner: any ByteSink
    let count: @Sendable (Int64) -> Void

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try inner.write(bytes)
        count(Int64(bytes.count))
    }
}

/// The finished blocks of a server download, shared by the parallel requests.
private final class BlockRecord: @unchecked Sendable {
    // @unchecked: `done` is only read and written under `lock`.
    private let lock = NSLock()
    private var done: Set<Int>

    init(done: Set<Int>) { self.done = done }

    func add(_ block: Int, save: (Set<Int>) throws -> Void) throws {
        try lock.withLock {
            done.insert(block)
            try save(done)
        }
    }
}

/// A folder held open by descriptor from the first time it is needed until the value is freed.
final class HeldFolder: @unchecked Sendable {
    // @unchecked: `fd` is only read and written under `lock`, and closed only in `deinit`, when no one else holds it.
    private let lock = NSLock()
    private var fd: Int32 = -1

    /// The descriptor of the folder `path` lies in, opened at the first call.
    func descriptor(of path: String) throws -> Int32 {
        try lock.withLock {
            if fd >= 0 { return fd }
            let parent = (path as NSString).deletingLastPathComponent
            fd = open(parent.isEmpty ? "." : parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else {
                throw ResumableDownload.Failure.local("cannot open \(parent): \(String(cString: strerror(errno)))")
            }
            return fd
        }
    }

    deinit { if fd >= 0 { close(fd) } }
}
