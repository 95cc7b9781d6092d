public import NIOCore

/// The blocks of one chunk received from one link, kept as the buffers they arrived in until the chunk is complete:
/// the write job hashes them in order and writes them with one `pwritev` (`DownloadSink.write(index:segments:)`), so a
/// received byte is not copied into a chunk-sized array first. Only blocks the engine asked for get here
/// (`EngineAction.keepBlock`), each of the length it expects, so the buffers held are bounded by the requests in
/// flight.
struct ChunkAssembly: Sendable {
    let length: Int
    private var blocks: [Int: ByteBuffer] = [:]

    init(length: Int) {
        self.length = length
    }

    /// Keeps a block at `offset` (a block received again replaces the first); one reaching past the chunk is dropped.
    mutating func keep(_ data: ByteBuffer, at offset: Int) {
        guard offset >= 0, offset + data.readableBytes <= length else { return }
        blocks[offset] = data
    }

    /// The blocks in order when they cover the chunk exactly, one after the other; nil otherwise.
    var ordered: [ByteBuffer]? {
        var next = 0
        var result: [ByteBuffer] = []
        result.reserveCapacity(blocks.count)
        for offset in blocks.keys.sorted() {
            guard offset == next, let block = blocks[offset] else { return nil }
            result.append(block)
            next += block.readableBytes
        }
        return next == length ? result : nil
    }
}

/// The bytes of a chunk to verify and write: the server's answer in one array, or a peer's blocks as they arrived.
enum ChunkBytes: Sendable {
    case contiguous([UInt8])
    case blocks([ByteBuffer])

    /// Calls `body` with the bytes as segments in order, valid only during the call.
    func withSegments<R>(_ body: ([UnsafeRawBufferPointer]) -> R) -> R {
        switch self {
        case .contiguous(let bytes):
            return bytes.withUnsafeBytes { body([$0]) }
        case .blocks(let buffers):
            var segments: [UnsafeRawBufferPointer] = []
            segments.reserveCapacity(buffers.count)
            return Self.collect(buffers[...], into: &segments, body)
        }
    }

    /// Opens each buffer's bytes in turn, nesting the calls, so that every pointer stays valid while `body` runs.
    private static func collect<R>(
        _ rest: ArraySlice<ByteBuffer>, into segments: inout [UnsafeRawBufferPointer],
        _ body: ([UnsafeRawBufferPointer]) -> R
    ) -> R {
        guard let first = rest.first else { return body(segments) }
        return first.withUnsafeReadableBytes { bytes in
            segments.append(bytes)
            return collect(rest.dropFirst(), into: &segments, body)
        }
    }
}
