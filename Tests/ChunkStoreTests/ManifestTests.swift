import Testing

@testable import ChunkStore

@Suite("Manifest")
struct ManifestTests {
    func sample(count: Int = 5) throws -> Manifest {
        var random = SeededBytes(seed: 9)
        let chunks = (0..<count).map { i in ChunkRef(hash: Hash256.sha256(random.bytes(16)), length: 1000 + i) }
        return try Manifest(parameters: .small, chunks: chunks)
    }

    @Test func encodingRoundTrips() throws {
        let manifest = try sample()
        let decoded = try Manifest(encoded: manifest.encoded())
        #expect(decoded == manifest)
        #expect(decoded.root == manifest.root)
        #expect(decoded.size == Int64((0..<5).reduce(0) { $0 + 1000 + $1 }))
    }

    @Test func malformedEncodingsAreRefused() throws {
        let bytes = try sample().encoded()
        for cut in [0, 3, 10, bytes.count - 1] {
            #expect(throws: ChunkStoreError.self) { _ = try Manifest(encoded: Array(bytes.prefix(cut))) }
        }
        var wrongCount = bytes
        wrongCount[wrongCount.count - 5 * 36 - 1] &+= 1
        #expect(throws: ChunkStoreError.self) { _ = try Manifest(encoded: wrongCount) }
        var oversized = bytes
        oversized[oversized.count - 5 * 36 - 5 + 1] = 0xff  // a u32 length field
        #expect(throws: ChunkStoreError.self) { _ = try Manifest(encoded: oversized + [0]) }
    }

    @Test func verifiesAgainstRootAndChunkProofs() throws {
        let manifest = try sample(count: 7)
        let root = manifest.root
        try manifest.verify(root: root)
        #expect(throws: ChunkStoreError.self) { try manifest.verify(root: Merkle.emptyRoot) }
        for index in 0..<7 {
            let proof = try #require(manifest.inclusionProof(index: index))
            #expect(Manifest.verifyChunk(manifest.chunks[index], index: index, chunkCount: 7, proof: proof, root: root))
            var lying = manifest.chunks[index]
            lying.length += 1
            #expect(!Manifest.verifyChunk(lying, index: index, chunkCount: 7, proof: proof, root: root))
        }
    }

    @Test func emptyManifestHasTheEmptyRoot() throws {
        let manifest = try Manifest(parameters: .default, chunks: [])
        #expect(manifest.root == Merkle.emptyRoot)
        #expect(manifest.size == 0)
    }
}
