import Foundation
public import Logging
internal import Synchronization

/// One version of a file fetched in a single GET with `If-Match` on its etag: the download of a file small enough that
/// one request is all it takes (a `ResumableDownload` of it would be one Range request too, plus its block record).
///
/// The `If-Match` GET is the proof that the bytes are that version: the server sends them only while the file's etag
/// is the one the listing gave (412 otherwise, `Failure.changedOnServer`), and the body must be exactly the listed
/// size. No PROPFIND before or after is needed.
///
/// The bytes go into `NAME.harp-part` in the destination's folder, created afresh with `O_EXCL | O_NOFOLLOW` through a
/// descriptor of that folder (whatever was at that name before, a leftover or a symbolic link placed by anyone, is
/// unlinked first, never followed), and are renamed into place with `renameat` only when the whole body arrived and
/// checked out. On any failure the partial file is removed: there is nothing to resume in a single request.
public struct WholeFileDownload: Sendable {
    let client: NextcloudClient
    let remotePath: String
    let etag: String
    let size: Int64
    let destination: String
    let logger: Logger
    let progress: @Sendable (Int64) -> Void
    /// Whole-body restarts after a connection that broke mid-body (the transport retries only requests that wrote
    /// nothing yet).
    public var restarts = 2
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

    /// The partial file, `NAME.harp-part`.
    public var partPath: String { destination + ".harp-part" }
    private var partName: String { (partPath as NSString).lastPathComponent }
    /// The block record a `ResumableDownload` of another version may have left next to the partial file.
    private var recordName: String { partName + ".server" }

    /// Fetches the file and renames it into place; returns the bytes received. Throws
    /// `ResumableDownload.Failure.changedOnServer` when the version is no longer the server's, `.local` for a local
    /// failure, and the request's `NextcloudError` otherwise; nothing is left at the destination then.
    public func run() async throws -> Int64 {
        let directory = try folder.descriptor(of: destination)
        // A leftover of an interrupted run, or anything placed at the partial file's name: unlinkat removes a link
        // itself, never its target. A folder there stays, and the exclusive create below fails on it.
        unlinkat(directory, partName, 0)
        unlinkat(directory, recordName, 0)
        let fd = openat(directory, partName, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw ResumableDownload.Failure.local("cannot create \(partPath): \(String(cString: strerror(errno)))")
        }
        var renamed = false
        defer {
            close(fd)
            if !renamed { unlinkat(directory, partName, 0) }
        }
        var attempt = 0
        while true {
            let sink = WholeBodySink(descriptor: fd, progress: progress)
            do {
                let info = try await client.download(remotePath, ifMatch: etag, into: sink)
                // The server's own ETag header, when it sends one, names the same version (a weak validator added by
                // a proxy aside).
                if let sent = info.etag, Self.strip(sent) != Self.strip(etag) {
                    throw ResumableDownload.Failure.changedOnServer
                }
                guard info.bytesWritten == size else {
                    throw NextcloudError(
                        .malformedResponse, status: info.status, path: remotePath,
                        detail: "the body has \(info.bytesWritten) bytes where the listing said \(size)")
                }
                break
            } catch let error as NextcloudError where error.kind == .preconditionFailed {
                throw ResumableDownload.Failure.changedOnServer
            } catch let error as NextcloudError
                where error.kind == .network && sink.received > 0 && attempt < restarts
            {
                attempt += 1
                logger.info(
                    "restarting a download whose connection broke mid-body",
                    metadata: ["nc.path": "\(remotePath)", "attempt": "\(attempt)"])
                progress(-sink.received)
                guard ftruncate(fd, 0) == 0 else {
                    throw ResumableDownload.Failure.local(
                        "cannot truncate \(partPath): \(String(cString: strerror(errno)))")
                }
            }
        }
        // The bytes reach the disk before the name does: after a crash the destination holds the whole version or
        // is absent, never a short or empty file under the final name (a rename can be written before the data).
        guard fsync(fd) == 0 else {
            throw ResumableDownload.Failure.local("fsync \(partPath): \(String(cString: strerror(errno)))")
        }
        guard renameat(directory, partName, directory, (destination as NSString).lastPathComponent) == 0 else {
            throw ResumableDownload.Failure.local(
                "cannot rename into \(destination): \(String(cString: strerror(errno)))")
        }
        renamed = true
        return size
    }

    private static func strip(_ etag: String) -> String {
        etag.hasPrefix("W/") ? String(etag.dropFirst(2)) : etag
    }
}

/// Writes a whole body from offset 0 and counts it (for progress, and to know whether a restart must undo any).
private final class WholeBodySink: ByteSink {
    private let inner: FileRangeSink
    private let count = Atomic<Int64>(0)
    private let progress: @Sendable (Int64) -> Void

    init(descriptor: Int32, progress: @escaping @Sendable (Int64) -> Void) {
        self.inner = FileRangeSink(descriptor: descriptor, offset: 0)
        self.progress = progress
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try inner.write(bytes)
        count.add(Int64(bytes.count), ordering: .relaxed)
        progress(Int64(bytes.count))
    }

    /// Bytes written so far.
    var received: Int64 { count.load(ordering: .relaxed) }
}
