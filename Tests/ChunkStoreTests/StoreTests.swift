import Foundation
import Testing

@testable import ChunkStore

@Suite("ChunkStore index")
struct StoreTests {
    @Test func indexesAndReusesUnchangedFiles() throws {
        let dir = try TemporaryDirectory()
        let store = try ChunkStore(path: dir.file("store.sqlite"))
        var random = SeededBytes(seed: 11)
        let data = random.bytes(300_000)
        let path = try dir.write("a.bin", data)

        let first = try store.index(file: path, parameters: .small)
        #expect(!first.reused)
        #expect(first.size == 300_000)
        let manifest = try #require(try store.manifest(root: first.root))
        #expect(manifest.chunks.count == first.chunkCount)
        // Independent check: the root of the chunks cut in memory.
        let chunker = FastCDC(parameters: .small, table: .harpV1)
        let expected = chunker.chunks(of: data).map {
            ChunkRef(hash: Hash256.sha256(Array(data[$0.offset..<$0.offset + $0.length])), length: $0.length)
        }
        #expect(manifest.chunks == expected)

        let second = try store.index(file: path, parameters: .small)
        #expect(second.reused)
        #expect(second.root == first.root)
    }

    @Test func emptyAndOneByteFiles() throws {
        let dir = try TemporaryDirectory()
        let store = try ChunkStore(path: dir.file("store.sqlite"))
        let empty = try store.index(file: try dir.write("empty", []))
        #expect(empty.chunkCount == 0 && empty.size == 0 && empty.root == Merkle.emptyRoot)
        let one = try store.index(file: try dir.write("one", [7]))
        #expect(one.chunkCount == 1 && one.size == 1)
        #expect(try store.readChunk(try #require(try store.manifest(root: one.root)).chunks[0].hash) == [7])
    }

    /// A store in a fresh folder with one file of 200,000 random bytes indexed in it, and that version's first chunk.
    struct OneFile {
        let dir: TemporaryDirectory
        let store: ChunkStore
        let data: [UInt8]
        let path: String
        let version: IndexOutcome
        let chunk: ChunkRef

        init(seed: UInt64) throws {
            dir = try TemporaryDirectory()
            store = try ChunkStore(path: dir.file("store.sqlite"))
            var random = SeededBytes(seed: seed)
            data = random.bytes(200_000)
            path = try dir.write("a.bin", data)
            version = try store.index(file: path, parameters: .small)
            chunk = try #require(try store.manifest(root: version.root)).chunks[0]
        }
    }

    @Test func changedFileIsDetectedAndNotServedStale() throws {
        let one = try OneFile(seed: 12)
        let (store, path, first, chunk) = (one.store, one.path, one.version, one.chunk)
        var data = one.data
        #expect(try store.readChunk(chunk.hash) == Array(data[0..<chunk.length]))

        // Same size, new bytes at the start: the guard (mtime) no longer matches.
        data[0] ^= 0xff
        try Data(data).write(to: URL(fileURLWithPath: path))
        #expect(throws: ChunkStoreError.stale(path: path)) { _ = try store.readChunk(chunk.hash) }

        let second = try store.index(file: path, parameters: .small)
        #expect(!second.reused)
        #expect(second.root != first.root)
        // The old first chunk is gone from the index; the new one is served.
        #expect(throws: ChunkStoreError.chunkNotFound(chunk.hash)) { _ = try store.readChunk(chunk.hash) }
        let newChunk = try #require(try store.manifest(root: second.root)).chunks[0]
        #expect(try store.readChunk(newChunk.hash) == Array(data[0..<newChunk.length]))
    }

    /// A location remembered from an earlier read (a seeder's cache) is read again without asking the index, and only
    /// while its guard holds: once its file changed, the read goes back to the index.
    @Test func aRememberedLocationIsTriedFirstAndOnlyWhileValid() throws {
        let one = try OneFile(seed: 14)
        let (dir, store, indexed, version, chunk) = (one.dir, one.store, one.path, one.version, one.chunk)
        var data = one.data
        func read(trying known: ChunkLocation?) throws -> (bytes: [UInt8], from: ChunkLocation) {
            var bytes = [UInt8](repeating: 0, count: chunk.length)
            let from = try bytes.withUnsafeMutableBytes {
                try store.readChunk(chunk.hash, into: $0, tryingFirst: known)
            }
            return (bytes, from)
        }
        let found = try read(trying: nil)
        #expect(found.bytes == Array(data[0..<chunk.length]))
        #expect(try store.locations(of: chunk.hash) == [found.from])

        // A copy the index does not know, given with its own guard: the bytes come from there.
        let copy = try dir.write("copy.bin", data)
        let copyGuard = try FileDescriptor(path: copy, flags: O_RDONLY).guardValues()
        let remembered = ChunkLocation(
            path: copy, offset: 0, length: chunk.length, kind: .indexedFile(expected: copyGuard))
        #expect(try read(trying: remembered).from == remembered)

        // The copy changes (same size, new bytes): its guard fails, and the index's location serves the chunk.
        data[0] ^= 0xff
        try Data(data).write(to: URL(fileURLWithPath: copy))
        let again = try read(trying: remembered)
        #expect(again.from == found.from)
        #expect(again.bytes[0] == data[0] ^ 0xff)

        // The indexed file that holds the version: each chunk's location there is the one the index gives.
        let manifest = try #require(try store.manifest(root: version.root))
        let file = try #require(try store.indexedFile(ofVersion: version.root))
        #expect(file.path == indexed)
        for (index, ref) in manifest.chunks.enumerated() {
            let location = file.location(offset: manifest.offsets[index], length: ref.length)
            #expect(try store.locations(of: ref.hash).contains(location))
        }
        #expect(try store.indexedFile(ofVersion: Hash256.sha256([1, 2, 3])) == nil)

        // A remembered location of another length is not tried.
        let shorter = ChunkLocation(
            path: copy, offset: 0, length: chunk.length - 1, kind: .indexedFile(expected: copyGuard))
        #expect(try read(trying: shorter).from == found.from)
    }

    /// A version's reader serves every chunk from the file that holds it; once that file changes, from another copy
    /// the index knows, never the changed bytes; an index outside the version is refused.
    @Test func aVersionReaderServesFromItsFileAndFallsBackWhenItChanges() throws {
        let one = try OneFile(seed: 15)
        let copy = try one.dir.write("b.bin", one.data)
        _ = try one.store.index(file: copy, parameters: .small)
        let manifest = try #require(try one.store.manifest(root: one.version.root))
        let reader = VersionReader(store: one.store, manifest: manifest, root: one.version.root)
        func readAll() throws -> [UInt8] {
            var all: [UInt8] = []
            for (index, chunk) in manifest.chunks.enumerated() {
                var bytes = [UInt8](repeating: 0, count: chunk.length)
                try bytes.withUnsafeMutableBytes { try reader.readChunk(index, into: $0) }
                all += bytes
            }
            return all
        }
        #expect(try readAll() == one.data)
        var changed = one.data
        for offset in manifest.offsets.dropLast() { changed[Int(offset)] ^= 0xFF }
        try Data(changed).write(to: URL(fileURLWithPath: one.path))
        #expect(try readAll() == one.data)
        var buffer = [UInt8](repeating: 0, count: 1)
        #expect(throws: ChunkStoreError.chunkIndexOutOfRange(manifest.chunks.count, count: manifest.chunks.count)) {
            try buffer.withUnsafeMutableBytes { try reader.readChunk(manifest.chunks.count, into: $0) }
        }
    }

    @Test func referenceCountsFollowVersions() throws {
        let dir = try TemporaryDirectory()
        let store = try ChunkStore(path: dir.file("store.sqlite"))
        var random = SeededBytes(seed: 13)
        let data = random.bytes(100_000)
        let a = try store.index(file: try dir.write("a", data), parameters: .small)
        let hash = try #require(try store.manifest(root: a.root)).chunks[0].hash
        #expect(try store.referenceCount(of: hash) == 1)
        // A second file with the same bytes shares the version; a third that extends them shares chunks.
        _ = try store.index(file: try dir.write("b", data), parameters: .small)
        #expect(try store.referenceCount(of: hash) == 1)
        let c = try store.index(file: try dir.write("c", data + random.bytes(50_000)), parameters: .small)
        #expect(c.root != a.root)
        #expect(try store.referenceCount(of: hash) == 2)
        #expect(try store.locations(of: hash).count == 3)
        try store.forget(file: dir.file("c"))
        #expect(try store.referenceCount(of: hash) == 1)
        try store.forget(file: dir.file("a"))
        try store.forget(file: dir.file("b"))
        #expect(try store.referenceCount(of: hash) == 0)
        #expect(try store.statistics().versions == 0)
    }

    @Test func missingFileIsAClearError() throws {
        let dir = try TemporaryDirectory()
        let store = try ChunkStore(path: dir.file("store.sqlite"))
        #expect(throws: ChunkStoreError.self) { _ = try store.index(file: dir.file("nope")) }
    }
}

@Suite("Streaming indexer")
struct FileIndexerTests {
    /// The streaming indexer cuts exactly where the in-memory chunker does, whatever the buffer size: small buffers
    /// force many carries and early cuts decided from fewer than maxSize bytes.
    @Test(arguments: [49_152, 65_536, 100_000])
    func streamingMatchesInMemory(blockSize: Int) throws {
        let dir = try TemporaryDirectory()
        var random = SeededBytes(seed: UInt64(blockSize))
        // Random data with a long run of zeros in the middle, which forces maximum-size chunks there.
        let data = random.bytes(1_500_000) + [UInt8](repeating: 0, count: 200_000) + random.bytes(700_001)
        let path = try dir.write("a.bin", data)
        let chunker = FastCDC(parameters: .small, table: .harpV1)
        for buffers in [2, 3] {
            let indexer = FileIndexer(chunker: chunker, blockSize: blockSize, bufferCount: buffers)
            let streamed = try indexer.index(path: path).manifest
            let expected = chunker.chunks(of: data).map {
                ChunkRef(hash: Hash256.sha256(Array(data[$0.offset..<$0.offset + $0.length])), length: $0.length)
            }
            #expect(streamed.chunks.map(\.length) == expected.map(\.length))
            #expect(streamed.root == (try Manifest(parameters: .small, chunks: expected)).root)
            #expect(streamed.size == Int64(data.count))
        }
    }

    @Test func defaultParametersOnSeveralBuffers() throws {
        let dir = try TemporaryDirectory()
        var random = SeededBytes(seed: 77)
        let data = random.bytes(20 << 20)
        let path = try dir.write("b.bin", data)
        let chunker = try FastCDC()
        let streamed = try FileIndexer(chunker: chunker).index(path: path).manifest
        #expect(streamed.chunks.map(\.length) == chunker.chunks(of: data).map(\.length))
        #expect(streamed.size == Int64(data.count))
    }
}
