internal import Foundation
public import NextcloudClient
internal import Synchronization

/// Compares a local file with the server's bytes of one version (Range GETs with `If-Match` on its etag), without
/// writing anything: the check a fetcher runs before renaming bytes that came from peers into place, and the proof a
/// seeder needs before it publishes a sidecar for a file it did not download or upload (DESIGN §4, "Sampling" and
/// "Provenance").
///
/// Sampling reads `sampleCount` ranges of `sampleLength` bytes at uniformly random offsets (a file no larger than their
/// sum is compared whole, which costs the same). If a fraction f of the file's 4 KiB-aligned windows differ from the
/// server's, all samples miss with probability about (1 − f)^64: under 10⁻⁶ once a fifth of the file differs, as it
/// does for another version or bulk corruption. A targeted edit of a few bytes is found with probability about
/// 64 × 4 KiB / size, which is why a sidecar is published only from bytes established from the server, never from a
/// sample (docs/threat-model.md).
///
/// This is the one spot check of harp: `get` runs it on bytes from peers before the rename, `seed` before it vouches
/// for a local copy, both through `check(localPath:depth:)`.
public struct ServerComparison: Sendable {
    public static let sampleCount = 64
    public static let sampleLength = 4096
    /// Range requests in flight at once while sampling.
    static let concurrency = 4

    /// Whether a sampling comparison of a file of `size` bytes reads it whole (it is no larger than the samples
    /// together).
    public static func comparesWhole(size: Int64) -> Bool {
        size <= Int64(sampleCount * sampleLength)
    }

    /// How much of the file to compare.
    public enum Depth: Sendable, Equatable {
        /// `sampleCount` random ranges of `sampleLength` bytes (the whole file when it is no larger).
        case sample
        /// Every byte.
        case everyByte
    }

    let client: NextcloudClient
    let remotePath: String
    let etag: String
    let size: Int64

    /// A comparison with the version `etag` (of `size` bytes) of `remotePath` on the server.
    public init(client: NextcloudClient, remotePath: String, etag: String, size: Int64) {
        self.client = client
        self.remotePath = remotePath
        self.etag = etag
        self.size = size
    }

    /// What a comparison did and found.
    public struct Outcome: Sendable, Equatable {
        public enum Mode: String, Sendable {
            /// Random ranges.
            case samples
            /// The whole file (small enough that sampling would read as much).
            case whole
            /// Every byte, as asked (`get --verify-server`, or a seeder establishing a file's provenance).
            case everyByte = "every-byte"
        }
        public var mode: Mode
        /// Bytes read from the server and compared.
        public var bytes: Int64 = 0
        public var requests = 0
        public var seconds: Double = 0
        /// The first differing offset found, or nil when every compared byte matched.
        public var mismatchAt: Int64?

        /// Whether every compared byte matched.
        public var matches: Bool { mismatchAt == nil }
    }

    /// Compares the file at `localPath` with the server's bytes, as deep as `depth` says. Throws
    /// `FetchError.changedOnServer` when the version changed, `FetchError.local` when the local file cannot be read.
    public func check(localPath: String, depth: Depth) async throws -> Outcome {
        switch depth {
        case .everyByte:
            return try await compareEveryByte(localPath: localPath)
        case .sample:
            var generator = SystemRandomNumberGenerator()
            return try await sample(localPath: localPath, using: &generator)
        }
    }

    /// Compares `sampleCount` random ranges of the file at `localPath` with the server's bytes (the whole file when it
    /// is no larger than the samples together).
    func sample<G: RandomNumberGenerator>(
        localPath: String, using generator: inout G
    ) async throws -> Outcome {
        guard !Self.comparesWhole(size: size) else {
            return try await compareEveryByte(localPath: localPath, mode: .whole)
        }
        let offsets = (0..<Self.sampleCount).map { _ in
            Int64.random(in: 0...(size - Int64(Self.sampleLength)), using: &generator)
        }
        return try await compare(
            localPath: localPath, ranges: offsets.map { ($0, Int64(Self.sampleLength)) }, mode: .samples)
    }

    /// Compares every byte of the file at `localPath` with the server's, in one streaming GET.
    func compareEveryByte(localPath: String, mode: Outcome.Mode = .everyByte) async throws -> Outcome {
        try await compare(localPath: localPath, ranges: size > 0 ? [(Int64(0), size)] : [], mode: mode)
    }

    /// Compares `ranges` of this version with the local file at `localPath`, which holds the version's bytes from
    /// `localBase` on (a folder's bundle holds many files one after the other). A mismatch is reported as an offset in
    /// the local file.
    public func check(
        localPath: String, localBase: Int64, ranges: [(offset: Int64, length: Int64)]
    ) async throws -> Outcome {
        try await compare(localPath: localPath, ranges: ranges, mode: .samples, localBase: localBase, inBundle: true)
    }

    /// `inBundle`: the local file holds this version from `localBase` on among other files' bytes, so it may be longer
    /// than the version (the bundle's first file starts at 0 too); otherwise it must be exactly the version's size.
    private func compare(
        localPath: String, ranges: [(offset: Int64, length: Int64)], mode: Outcome.Mode, localBase: Int64 = 0,
        inBundle: Bool = false
    ) async throws -> Outcome {
        let started = ContinuousClock.now
        let fd = open(localPath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            throw FetchError.local("cannot open \(localPath) to compare it: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0,
            inBundle ? Int64(st.st_size) >= localBase + size : Int64(st.st_size) == size
        else {
            return Outcome(mode: mode, mismatchAt: localBase)
        }
        let counters = Counters()
        let client = self.client
        let path = remotePath
        let etag = self.etag
        try await withThrowingTaskGroup(of: Void.self) { group in
            var pending = ranges.makeIterator()
            func addNext() {
                guard let range = pending.next() else { return }
                group.addTask {
                    let sink = ComparingSink(descriptor: fd, path: localPath, offset: localBase + range.offset)
                    do {
                        guard let byteRange = ByteRange(offset: range.offset, length: range.length) else { return }
                        // A whole-file comparison asks for the range 0-(size-1), which a server answers with 206.
                        let info = try await client.download(path, range: byteRange, ifMatch: etag, into: sink)
                        guard info.bytesWritten == range.length else {
                            throw NextcloudError(
                                .malformedResponse, path: path,
                                detail: "short range: \(info.bytesWritten) of \(range.length) bytes")
                        }
                    } catch let error as ComparingSink.Mismatch {
                        counters.state.withLock { c in
                            c.mismatch = min(c.mismatch ?? .max, error.offset)
                        }
                    } catch let error as NextcloudError where error.kind == .preconditionFailed {
                        throw FetchError.changedOnServer
                    }
                    counters.state.withLock { c in
                        c.bytes += sink.compared
                        c.requests += 1
                    }
                }
            }
            for _ in 0..<Self.concurrency { addNext() }
            while try await group.next() != nil {
                if counters.state.withLock({ $0.mismatch }) != nil {
                    group.cancelAll()
                    break
                }
                addNext()
            }
        }
        let result = counters.state.withLock { $0 }
        return Outcome(
            mode: mode, bytes: result.bytes, requests: result.requests,
            seconds: (ContinuousClock.now - started).secondsValue,
            mismatchAt: result.mismatch)
    }
}

/// What the comparison's concurrent requests add up.
private final class Counters: Sendable {
    let state = Mutex((bytes: Int64(0), requests: 0, mismatch: Int64?.none))
}

/// Compares a body with a local file as it arrives; throws `Mismatch` at the first byte that differs, which ends the
/// transfer at once. A local read that fails is a local error, never a mismatch: it must not be taken for proof that
/// the sidecar lies.
private final class ComparingSink: ByteSink {
    struct Mismatch: Error {
        let offset: Int64
    }

    private struct State {
        var position: Int64
        var compared: Int64 = 0
        /// The local bytes of the piece being compared, reused from one piece to the next (pieces are the transport's
        /// buffers, a few KiB to a few hundred KiB).
        var buffer: [UInt8] = []
    }

    private let descriptor: Int32
    private let path: String
    private let state: Mutex<State>

    init(descriptor: Int32, path: String, offset: Int64) {
        self.descriptor = descriptor
        self.path = path
        self.state = Mutex(State(position: offset))
    }

    var compared: Int64 { state.withLock { $0.compared } }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let incoming = bytes.baseAddress, !bytes.isEmpty else { return }
        try state.withLock { s in
            let count = bytes.count
            if s.buffer.count < count { s.buffer = [UInt8](repeating: 0, count: count) }
            let position = s.position
            let read = try s.buffer.withUnsafeMutableBytes { buffer -> Int in
                var done = 0
                while done < count {
                    let n = pread(descriptor, buffer.baseAddress! + done, count - done, off_t(position) + off_t(done))
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw FetchError.local("cannot read \(path) to compare it: \(String(cString: strerror(errno)))")
                    }
                    if n == 0 { break }
                    done += n
                }
                return done
            }
            // The server sent bytes past the local file's end: they differ.
            guard read == count else { throw Mismatch(offset: position + Int64(read)) }
            let differs = s.buffer.withUnsafeBytes { memcmp($0.baseAddress!, incoming, count) != 0 }
            if differs {
                let first = (0..<count).first { s.buffer[$0] != bytes[$0] } ?? 0
                throw Mismatch(offset: position + Int64(first))
            }
            s.position += Int64(count)
            s.compared += Int64(count)
        }
    }
}
