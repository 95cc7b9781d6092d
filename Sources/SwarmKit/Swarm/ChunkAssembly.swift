internal import NIOCore

/// The blocks of one chunk received from one link, kept as they arrived, by offset: the write job hashes them one
/// after the other and writes them with one `pwritev` once they cover the chunk exactly. Only blocks the engine asked
/// for get here (`EngineAction.keepBlock`), each of the length it expects, so the buffers held are bounded by the
/// requests in flight.
///
/// Each block is a buffer of its own: `TransportReader` decrypts a piece's block straight into a buffer of the
/// block's length, so keeping it pins nothing else. (When blocks were slices of the message decoder's cumulation
/// buffer, keeping them pinned that buffer and the decoder copied its unread bytes at its next read, which cost more
/// than copying each block into one chunk buffer did; docs/benchmarks.md, "One-to-one".)
struct ChunkAssembly: Sendable {
    let length: Int
    /// The blocks that arrived, by offset.
    private var blocks: [Int: ByteBuffer] = [:]

    init(length: Int) {
        self.length = length
    }

    /// Keeps a block at `offset` (a block received again replaces the first); one reaching past the chunk is dropped.
    mutating func keep(_ data: ByteBuffer, at offset: Int) {
        guard offset >= 0, offset + data.readableBytes <= length else { return }
        blocks[offset] = data
    }

    /// The chunk's blocks in order when they cover it exactly, one after the other; nil otherwise.
    var complete: [ByteBuffer]? {
        var next = 0
        var ordered: [ByteBuffer] = []
        ordered.reserveCapacity(blocks.count)
        for offset in blocks.keys.sorted() {
            guard offset == next, let block = blocks[offset] else { return nil }
            ordered.append(block)
            next += block.readableBytes
        }
        guard next == length else { return nil }
        return ordered
    }
}

/// The bytes of a chunk to verify and write: the server's answer, or the blocks a peer's chunk arrived in.
enum ChunkBytes: Sendable {
    case array([UInt8])
    case blocks([ByteBuffer])

    /// Calls `body` with the bytes as segments, one after the other, valid only during the call.
    func withSegments<R>(_ body: ([UnsafeRawBufferPointer]) -> R) -> R {
        switch self {
        case .array(let bytes):
            return bytes.withUnsafeBytes { body([$0]) }
        case .blocks(let blocks):
            var segments: [UnsafeRawBufferPointer] = []
            segments.reserveCapacity(blocks.count)
            return Self.open(blocks[...], into: &segments, body)
        }
    }

    /// Opens each block's bytes in turn, adding them to `segments`, and calls `body` with all of them (a chunk's
    /// blocks are at most `ChunkingParameters.largestAllowedMaxSize / WireLimits.maxBlockLength`, 128, deep).
    private static func open<R>(
        _ blocks: ArraySlice<ByteBuffer>, into segments: inout [UnsafeRawBufferPointer],
        _ body: ([UnsafeRawBufferPointer]) -> R
    ) -> R {
        guard let first = blocks.first else { return body(segments) }
        return first.withUnsafeReadableBytes { bytes in
            segments.append(bytes)
            return open(blocks.dropFirst(), into: &segments, body)
        }
    }
}
