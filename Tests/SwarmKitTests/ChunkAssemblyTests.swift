import NIOCore
import Testing

@testable import SwarmKit

/// The blocks of a chunk kept as they arrive, and handed to the write in order only when they cover it exactly.
@Suite("Chunk assembly")
struct ChunkAssemblyTests {
    static func block(_ offset: Int, _ length: Int) -> ByteBuffer {
        ByteBuffer(bytes: (0..<length).map { UInt8(truncatingIfNeeded: offset + $0) })
    }

    @Test func blocksInAnyOrderComeOutInOrder() throws {
        var assembly = ChunkAssembly(length: 300)
        assembly.keep(Self.block(200, 100), at: 200)
        assembly.keep(Self.block(0, 100), at: 0)
        #expect(assembly.complete == nil)
        assembly.keep(Self.block(100, 100), at: 100)
        let complete = try #require(assembly.complete)
        #expect(complete.map(\.readableBytes) == [100, 100, 100])
        // The bytes the write sees, segment after segment, are the chunk's.
        let bytes = ChunkBytes.blocks(complete).withSegments { $0.flatMap { Array($0) } }
        #expect(bytes == (0..<300).map { UInt8(truncatingIfNeeded: $0) })
    }

    @Test func aGapAShortEndOrABlockPastTheEndIsNoChunk() {
        var gap = ChunkAssembly(length: 300)
        gap.keep(Self.block(0, 100), at: 0)
        gap.keep(Self.block(150, 150), at: 150)
        #expect(gap.complete == nil)
        var short = ChunkAssembly(length: 300)
        short.keep(Self.block(0, 100), at: 0)
        short.keep(Self.block(100, 150), at: 100)
        #expect(short.complete == nil)
        var past = ChunkAssembly(length: 300)
        past.keep(Self.block(0, 200), at: 0)
        past.keep(Self.block(200, 101), at: 200)
        #expect(past.complete == nil)
        past.keep(Self.block(200, 100), at: 200)
        #expect(past.complete?.reduce(0) { $0 + $1.readableBytes } == 300)
    }
}
