internal import NIOCore

/// The blocks of one chunk received from one link, copied as they arrive into one buffer of the chunk's length
/// (not zero-filled first), with the blocks that arrived noted: the write job hashes it and writes it with one
/// `pwritev` once the blocks cover the chunk exactly. Only blocks the engine asked for get here
/// (`EngineAction.keepBlock`), each of the length it expects, so the buffers held are bounded by the requests in
/// flight.
///
/// Why a copy: a piece's bytes are a slice of the message decoder's cumulation buffer (NIO's
/// `ByteToMessageDecoder`). Keeping the slices until the chunk is complete, to write them with `pwritev` without
/// this copy, pinned those buffers: the decoder then copied its unread bytes into a fresh buffer at its next read,
/// and the fresh allocations page-faulted. Measured (docs/benchmarks.md, "One-to-one"), the fetcher's event loop
/// spent more in `memmove` and page faults than the copy costs.
struct ChunkAssembly: Sendable {
    let length: Int
    private var storage: ByteBuffer
    /// Bytes of each block that arrived, by offset.
    private var blocks: [Int: Int] = [:]

    init(length: Int) {
        self.length = length
        storage = ByteBufferAllocator().buffer(capacity: length)
    }

    /// Copies a block in at `offset` (a block received again replaces the first); one reaching past the chunk is
    /// dropped.
    mutating func keep(_ data: ByteBuffer, at offset: Int) {
        guard offset >= 0, offset + data.readableBytes <= length else { return }
        storage.setBuffer(data, at: offset)
        blocks[offset] = data.readableBytes
    }

    /// The chunk's bytes when the blocks cover it exactly, one after the other; nil otherwise.
    var complete: ByteBuffer? {
        var next = 0
        for offset in blocks.keys.sorted() {
            guard offset == next, let count = blocks[offset] else { return nil }
            next += count
        }
        guard next == length else { return nil }
        var chunk = storage
        chunk.moveWriterIndex(to: length)
        return chunk
    }
}

/// The bytes of a chunk to verify and write: the server's answer, or a chunk assembled from a peer's blocks.
enum ChunkBytes: Sendable {
    case array([UInt8])
    case buffer(ByteBuffer)

    /// Calls `body` with the bytes, valid only during the call.
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        switch self {
        case .array(let bytes): bytes.withUnsafeBytes(body)
        case .buffer(let buffer): buffer.withUnsafeReadableBytes(body)
        }
    }
}
