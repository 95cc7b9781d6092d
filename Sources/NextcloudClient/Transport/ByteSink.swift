internal import Synchronization

public import struct Foundation.Data

#if canImport(Glibc)
    internal import Glibc
#endif

/// Receives the body of a download as it arrives, so that memory stays bounded.
///
/// `write` is called on the transport's own thread, never on Swift's cooperative pool, with
/// consecutive pieces of the body in order. Throwing aborts the transfer; the download then
/// throws that same error. A sink receives bytes only after the response was checked: for a
/// Range request only a 206 with a matching `Content-Range`, never an error body.
public protocol ByteSink: Sendable {
    /// Stores the next piece of the body.
    func write(_ bytes: UnsafeRawBufferPointer) throws
}

/// Collects a body in memory, up to a limit.
public final class DataSink: ByteSink {
    private let storage = Mutex(Data())
    private let limit: Int

    /// A sink that refuses bodies longer than `limit` bytes.
    public init(limit: Int = 64 << 20) {
        self.limit = limit
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try storage.withLock { data in
            guard data.count + bytes.count <= limit else {
                throw NextcloudError(.malformedResponse, detail: "the answer is larger than \(limit) bytes")
            }
            data.append(contentsOf: bytes)
        }
    }

    /// Everything written so far.
    public var data: Data { storage.withLock { $0 } }
}

/// Writes a body into an open file descriptor at a given offset with `pwrite`, the way the
/// swarm engine writes a range straight into its partial file.
public final class FileRangeSink: ByteSink {
    private let descriptor: Int32
    private let position: Mutex<Int64>

    /// A sink writing at `offset` onwards into `descriptor`, which the caller keeps open and closes.
    public init(descriptor: Int32, offset: Int64) {
        self.descriptor = descriptor
        self.position = Mutex(offset)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try position.withLock { offset in
            var done = 0
            while done < bytes.count {
                guard let base = bytes.baseAddress else { return }
                let n = pwrite(descriptor, base + done, bytes.count - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw NextcloudError(
                        .localIO, detail: "cannot write the download: \(String(cString: strerror(errno)))")
                }
                done += n
            }
            offset += Int64(done)
        }
    }

    /// The offset where the next byte goes.
    public var nextOffset: Int64 { position.withLock { $0 } }
}
