internal import Crypto
import Dispatch
import Glibc
import Synchronization

/// Reads a file once, streaming, cuts it into chunks and hashes them, with bounded memory.
///
/// The calling thread reads and finds cut points; SHA-256 of each block's chunks runs on Dispatch's global queue, so
/// hashing of earlier blocks overlaps with chunking of later ones and both cores work. At most `bufferCount` buffers of
/// `blockSize` bytes are alive at once (18 MiB with the defaults).
struct FileIndexer {
    let chunker: FastCDC
    /// Bytes per read buffer (at least 1.5 × maxSize, so every read makes progress).
    var blockSize = 6 * 1024 * 1024
    var bufferCount = 3

    struct Result {
        var manifest: Manifest
        var guardBefore: FileGuard
        var guardAfter: FileGuard
    }

    /// One reusable read buffer; owned by exactly one stage at a time (the pool hands it over).
    final class Buffer: @unchecked Sendable {
        // @unchecked: a buffer is passed from the reader to the hasher and back through `BufferPool`,
        // and only its current holder touches the memory.
        let base: UnsafeMutableRawPointer
        let capacity: Int
        init(capacity: Int) {
            self.capacity = capacity
            self.base = .allocate(byteCount: capacity, alignment: 64)
        }
        deinit { base.deallocate() }
    }

    /// A fixed set of buffers; `take` blocks while all are in use.
    final class BufferPool: Sendable {
        private let free: Mutex<[Buffer]>
        private let available: DispatchSemaphore

        init(count: Int, capacity: Int) {
            free = Mutex((0..<count).map { _ in Buffer(capacity: capacity) })
            available = DispatchSemaphore(value: count)
        }

        func take() -> Buffer {
            available.wait()
            return free.withLock { $0.removeLast() }
        }

        func give(_ buffer: Buffer) {
            free.withLock { $0.append(buffer) }
            available.signal()
        }
    }

    /// Indexes the file at `path`. The guard is taken before and after reading so a caller can tell whether the file
    /// changed underneath.
    func index(path: String) throws(ChunkStoreError) -> Result {
        let file = try FileDescriptor(path: path, flags: O_RDONLY)
        let before = try file.guardValues()
        _ = posix_fadvise(file.fd, 0, 0, POSIX_FADV_SEQUENTIAL)
        let maxSize = chunker.parameters.maxSize
        let pool = BufferPool(count: bufferCount, capacity: max(blockSize, maxSize * 3 / 2))
        // Blocks are hashed concurrently (both cores help once the chunker runs ahead); results are kept per block
        // and joined in block order at the end.
        let hashing = DispatchGroup()
        let results = Mutex<[Int: [ChunkRef]]>([:])

        var current = pool.take()
        var carry = 0
        var blockNumber = 0
        var failure: ChunkStoreError?
        while true {
            let filled: Int
            do {
                filled = carry + (try file.readSequential(into: current.base + carry, count: current.capacity - carry))
            } catch {
                failure = error
                pool.give(current)
                break
            }
            let atEnd = filled < current.capacity
            let cuts = findCuts(in: UnsafeRawBufferPointer(start: current.base, count: filled), atEnd: atEnd)
            let position = cuts.last?.upperBound ?? 0
            let leftover = filled - position
            let next: Buffer? = atEnd ? nil : pool.take()
            if let next, leftover > 0 {
                next.base.copyMemory(from: current.base + position, byteCount: leftover)
            }
            let block = current
            let number = blockNumber
            DispatchQueue.global().async(group: hashing) {
                var hashed = [ChunkRef]()
                hashed.reserveCapacity(cuts.count)
                for cut in cuts {
                    let bytes = UnsafeRawBufferPointer(start: block.base + cut.lowerBound, count: cut.count)
                    hashed.append(ChunkRef(hash: Hash256.sha256(bytes), length: cut.count))
                }
                results.withLock { $0[number] = hashed }
                pool.give(block)
            }
            blockNumber += 1
            guard let next else { break }
            current = next
            carry = leftover
        }
        hashing.wait()
        if let failure { throw failure }
        let after = try file.guardValues()
        let chunks = results.withLock { blocks in (0..<blockNumber).flatMap { blocks[$0] ?? [] } }
        return Result(
            manifest: try Manifest(parameters: chunker.parameters, chunks: chunks),
            guardBefore: before,
            guardAfter: after
        )
    }

    /// The cuts that can be decided from `bytes` (which start at a chunk boundary).
    ///
    /// A cut is definitive when `maxSize` bytes are available or the input ends. With fewer bytes, but at least
    /// `avgSize` (so the masks are the same as with the full input), a cut found before the end of the available bytes
    /// is also definitive: the search visits the same positions with the same masks. Otherwise the rest waits for
    /// more data, which keeps the bytes carried into the next buffer to about one chunk.
    func findCuts(in bytes: UnsafeRawBufferPointer, atEnd: Bool) -> [Range<Int>] {
        let parameters = chunker.parameters
        var cuts: [Range<Int>] = []
        var position = 0
        while position < bytes.count {
            let available = bytes.count - position
            let rest = UnsafeRawBufferPointer(rebasing: bytes[position...])
            if atEnd || available >= parameters.maxSize {
                let length = chunker.cut(rest).length
                cuts.append(position..<position + length)
                position += length
            } else if available >= parameters.avgSize {
                let length = chunker.cut(rest).length
                guard length < available else { break }
                cuts.append(position..<position + length)
                position += length
            } else {
                break
            }
        }
        return cuts
    }
}
