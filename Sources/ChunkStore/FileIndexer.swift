internal import Crypto
import Dispatch
import Glibc
import Synchronization

/// Reads a file once, streaming, cuts it into chunks and hashes them, with bounded memory.
///
/// The calling thread reads and finds cut points; SHA-256 runs on a second thread, so on two cores the slower of the
/// two stages sets the pace. At most `bufferCount` buffers of `blockSize + maxSize` bytes are alive at once.
struct FileIndexer {
    let chunker: FastCDC
    var blockSize = 8 * 1024 * 1024
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
        let pool = BufferPool(count: bufferCount, capacity: blockSize + maxSize)
        let hashQueue = DispatchQueue(label: "harp.index.hash")
        let refs = Mutex<[ChunkRef]>([])

        var current = pool.take()
        var carry = 0
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
            var cuts: [Range<Int>] = []
            var position = 0
            while filled - position >= maxSize || (atEnd && position < filled) {
                let rest = UnsafeRawBufferPointer(start: current.base + position, count: filled - position)
                let length = chunker.cut(rest).length
                cuts.append(position..<position + length)
                position += length
            }
            let leftover = filled - position
            let next: Buffer? = atEnd ? nil : pool.take()
            if let next, leftover > 0 {
                next.base.copyMemory(from: current.base + position, byteCount: leftover)
            }
            let block = current
            let ranges = cuts
            hashQueue.async {
                var hashed = [ChunkRef]()
                hashed.reserveCapacity(ranges.count)
                for cut in ranges {
                    let bytes = UnsafeRawBufferPointer(start: block.base + cut.lowerBound, count: cut.count)
                    hashed.append(ChunkRef(hash: Hash256.sha256(bytes), length: cut.count))
                }
                refs.withLock { $0.append(contentsOf: hashed) }
                pool.give(block)
            }
            guard let next else { break }
            current = next
            carry = leftover
        }
        hashQueue.sync {}
        if let failure { throw failure }
        let after = try file.guardValues()
        let chunks = refs.withLock { $0 }
        return Result(
            manifest: try Manifest(parameters: chunker.parameters, chunks: chunks),
            guardBefore: before,
            guardAfter: after
        )
    }
}
