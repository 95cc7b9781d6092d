import Foundation
import Testing

@testable import ChunkStore

@Suite("Download sink")
struct DownloadSinkTests {
    struct Fixture {
        let dir: TemporaryDirectory
        let data: [UInt8]
        let manifest: Manifest
        let root: Hash256
        let destination: String

        init(size: Int = 400_000, seed: UInt64 = 21) throws {
            dir = try TemporaryDirectory()
            var random = SeededBytes(seed: seed)
            let data = random.bytes(size)
            self.data = data
            let chunker = FastCDC(parameters: .small, table: .harpV1)
            let chunks = chunker.chunks(of: data).map {
                ChunkRef(hash: Hash256.sha256(Array(data[$0.offset..<$0.offset + $0.length])), length: $0.length)
            }
            manifest = try Manifest(parameters: .small, chunks: chunks)
            root = manifest.root
            destination = dir.file("out.bin")
        }

        func bytes(of index: Int) -> [UInt8] {
            let range = manifest.range(of: index)
            return Array(data[Int(range.lowerBound)..<Int(range.upperBound)])
        }

        func store() throws -> ChunkStore { try ChunkStore(path: dir.file("store.sqlite")) }

        /// Chunk indexes whose bytes in the partial file hash correctly, computed without the store.
        func chunksPresentOnDisk() throws -> Set<Int> {
            let part = [UInt8](try Data(contentsOf: URL(fileURLWithPath: destination + ".harp-part")))
            return Set(
                (0..<manifest.chunks.count).filter { i in
                    let r = manifest.range(of: i)
                    return Int(r.upperBound) <= part.count
                        && Hash256.sha256(Array(part[Int(r.lowerBound)..<Int(r.upperBound)])) == manifest.chunks[i].hash
                })
        }
    }

    @Test func writesInAnyOrderAndFinishes() throws {
        let f = try Fixture()
        let store = try f.store()
        let sink = try store.openDownload(manifest: f.manifest, root: f.root, destination: f.destination)
        #expect(f.manifest.chunks.count > 10)
        var order = Array(0..<f.manifest.chunks.count)
        order.reverse()
        order.swapAt(0, order.count / 2)
        for i in order { try sink.write(index: i, bytes: f.bytes(of: i)) }
        #expect(sink.missing.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: f.destination))
        try sink.finish()
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: f.destination))) == f.data)
        #expect(!FileManager.default.fileExists(atPath: f.destination + ".harp-part"))
        // The finished file is indexed and can serve its chunks.
        #expect(try store.readChunk(f.manifest.chunks[3].hash) == f.bytes(of: 3))
        #expect(try store.statistics().downloads == 0)
    }

    @Test func wrongChunkIsRefusedAndNothingIsWritten() throws {
        let f = try Fixture()
        let sink = try f.store().openDownload(manifest: f.manifest, root: f.root, destination: f.destination)
        var bad = f.bytes(of: 2)
        bad[10] ^= 1
        #expect(throws: ChunkStoreError.self) { try sink.write(index: 2, bytes: bad) }
        #expect(throws: ChunkStoreError.self) { try sink.write(index: 2, bytes: f.bytes(of: 3)) }
        #expect(throws: ChunkStoreError.self) { try sink.write(index: 2, bytes: Array(f.bytes(of: 2).dropLast())) }
        #expect(throws: ChunkStoreError.self) { try sink.write(index: 99_999, bytes: f.bytes(of: 2)) }
        #expect(!sink.has(2))
        try sink.flush()
        #expect(try f.chunksPresentOnDisk().isEmpty)
    }

    @Test func finishRefusesAnIncompleteDownload() throws {
        let f = try Fixture()
        let sink = try f.store().openDownload(manifest: f.manifest, root: f.root, destination: f.destination)
        try sink.write(index: 0, bytes: f.bytes(of: 0))
        #expect(throws: ChunkStoreError.incomplete(missing: f.manifest.chunks.count - 1)) { try sink.finish() }
        #expect(!FileManager.default.fileExists(atPath: f.destination))
    }

    @Test func openingWithAManifestThatDoesNotMatchTheRootFails() throws {
        let f = try Fixture()
        #expect(throws: ChunkStoreError.self) {
            _ = try f.store().openDownload(manifest: f.manifest, root: Merkle.emptyRoot, destination: f.destination)
        }
        #expect(!FileManager.default.fileExists(atPath: f.destination + ".harp-part"))
    }

    /// Writes half the chunks, some flushed and some not, then drops the sink and the store without closing them (as
    /// a crash would) and reopens: the recorded chunks are exactly those durable and correct on disk.
    @Test func resumeAfterCrashAgreesWithTheDisk() throws {
        let f = try Fixture(size: 600_000)
        let count = f.manifest.chunks.count
        let half = Array(stride(from: 0, to: count, by: 2))
        do {
            let sink = try f.store().openDownload(
                manifest: f.manifest, root: f.root, destination: f.destination,
                durability: .init(maxPendingChunks: 5, maxPendingBytes: .max))
            for i in half { try sink.write(index: i, bytes: f.bytes(of: i)) }
            #expect(sink.recordedChunks.count < half.count)  // the last batch was never flushed
        }
        // Corrupt one byte of a chunk that was written but not recorded: it must not be adopted on resume.
        let unflushed = try #require(half.last)
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: f.destination + ".harp-part"))
        try handle.seek(toOffset: UInt64(f.manifest.offsets[unflushed]))
        try handle.write(contentsOf: [f.bytes(of: unflushed)[0] ^ 0xff])
        try handle.close()

        let store = try f.store()
        let sink = try store.openDownload(manifest: f.manifest, root: f.root, destination: f.destination)
        let onDisk = try f.chunksPresentOnDisk()
        #expect(Set(sink.recordedChunks) == onDisk)
        #expect(onDisk == Set(half).subtracting([unflushed]))
        for i in sink.missing { try sink.write(index: i, bytes: f.bytes(of: i)) }
        try sink.finish()
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: f.destination))) == f.data)
    }

    /// A chunk recorded by an earlier process and then damaged on disk is caught at finish: no rename, and the chunk
    /// is fetched again.
    @Test func finishVerifiesChunksFromEarlierSessions() throws {
        let f = try Fixture()
        do {
            let sink = try f.store().openDownload(manifest: f.manifest, root: f.root, destination: f.destination)
            for i in 0..<f.manifest.chunks.count { try sink.write(index: i, bytes: f.bytes(of: i)) }
            try sink.flush()
        }
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: f.destination + ".harp-part"))
        try handle.seek(toOffset: UInt64(f.manifest.offsets[4] + 7))
        try handle.write(contentsOf: [0x55, 0xaa])
        try handle.close()

        let sink = try f.store().openDownload(manifest: f.manifest, root: f.root, destination: f.destination)
        #expect(sink.missing.isEmpty)  // the index still believes chunk 4 is there
        #expect(throws: ChunkStoreError.self) { try sink.finish() }
        #expect(!FileManager.default.fileExists(atPath: f.destination))
        #expect(sink.missing == [4])
        try sink.write(index: 4, bytes: f.bytes(of: 4))
        try sink.finish()
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: f.destination))) == f.data)
    }

    @Test func localChunksAreCopiedNotFetched() throws {
        let f = try Fixture()
        let store = try f.store()
        // An older version that shares its first 200 KB with the new one is indexed locally.
        let old = try f.dir.write("old.bin", Array(f.data.prefix(200_000)) + [1, 2, 3])
        _ = try store.index(file: old, parameters: .small)
        let sink = try store.openDownload(manifest: f.manifest, root: f.root, destination: f.destination)
        let copied = try sink.adoptLocalChunks()
        // Exactly the chunks that end within the shared 200 KB: the old file's chunking agrees with the new one up to
        // there (a cut point depends only on the bytes before it), and its last chunk holds the 3 different bytes.
        let shared = Set(f.manifest.chunks.indices.filter { f.manifest.range(of: $0).upperBound <= 200_000 })
        #expect(copied == shared.count)
        #expect(!shared.isEmpty && shared.count < f.manifest.chunks.count)
        #expect(Set(sink.missing) == Set(f.manifest.chunks.indices).subtracting(shared))
        for i in sink.missing { try sink.write(index: i, bytes: f.bytes(of: i)) }
        try sink.finish()
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: f.destination))) == f.data)
    }

    @Test func aRepeatedLocalChunkFillsEveryPlaceItAppears() throws {
        let f = try Fixture()
        let store = try f.store()
        // Zeros cut into maximum-size chunks that are all the same chunk; a short local file holds one of them.
        let zeros = [UInt8](repeating: 0, count: 10 * ChunkingParameters.small.maxSize)
        let chunker = FastCDC(parameters: .small, table: .harpV1)
        let chunks = chunker.chunks(of: zeros).map {
            ChunkRef(hash: Hash256.sha256(Array(zeros[$0.offset..<$0.offset + $0.length])), length: $0.length)
        }
        #expect(Set(chunks.map(\.hash)).count == 1)
        let manifest = try Manifest(parameters: .small, chunks: chunks)
        _ = try store.index(file: try f.dir.write("local.bin", Array(zeros.prefix(40_000))), parameters: .small)
        let sink = try store.openDownload(manifest: manifest, root: manifest.root, destination: f.destination)
        #expect(try sink.adoptLocalChunks() == chunks.count)
        try sink.finish()
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: f.destination))) == zeros)
    }

    @Test func emptyFileDownload() throws {
        let f = try Fixture()
        let manifest = try Manifest(parameters: .small, chunks: [])
        let sink = try f.store().openDownload(manifest: manifest, root: Merkle.emptyRoot, destination: f.destination)
        try sink.finish()
        #expect(try Data(contentsOf: URL(fileURLWithPath: f.destination)).isEmpty)
    }

    /// A symbolic link placed at `NAME.harp-part` (by anyone who may write the output folder) is never followed: the
    /// file it points to keeps its bytes, and the download fails with an error that says why.
    @Test func aSymbolicLinkAtThePartialFileIsNotFollowed() throws {
        let f = try Fixture()
        let victim = try f.dir.write("victim.txt", Array("keep me".utf8))
        #expect(symlink(victim, f.destination + ".harp-part") == 0)
        #expect {
            _ = try f.store().openDownload(manifest: f.manifest, root: f.root, destination: f.destination)
        } throws: { error in
            "\(error)".contains("symbolic link")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: victim)) == Data("keep me".utf8))
    }

    /// A folder on the way swapped for a symbolic link while the download runs does not move the finished file: it
    /// is renamed in the folder the download started in, and a file planted in the link's target is left alone.
    @Test func theFinalRenameStaysInTheFolderTheDownloadStartedIn() throws {
        let f = try Fixture()
        let folder = f.dir.file("sub")
        let elsewhere = f.dir.file("elsewhere")
        for path in [folder, elsewhere] {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        let sink = try f.store().openDownload(manifest: f.manifest, root: f.root, destination: folder + "/out.bin")
        for i in 0..<f.manifest.chunks.count { try sink.write(index: i, bytes: f.bytes(of: i)) }
        // Someone swaps the folder for a link and plants a partial file of their own where the link points.
        #expect(rename(folder, f.dir.file("moved")) == 0)
        #expect(symlink(elsewhere, folder) == 0)
        _ = try f.dir.write("elsewhere/out.bin.harp-part", Array("planted".utf8))
        try sink.finish()
        #expect(!FileManager.default.fileExists(atPath: elsewhere + "/out.bin"))
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: f.dir.file("moved/out.bin")))) == f.data)
    }

    /// A chunk given as the blocks it arrived in (any split, down to single bytes, more than one `pwritev` can take)
    /// is verified over all of them and written in place; a wrong or missing block writes nothing.
    @Test func aChunkGivenAsSegmentsIsVerifiedAndWrittenWhole() throws {
        let f = try Fixture()
        let store = try f.store()
        let sink = try store.openDownload(manifest: f.manifest, root: f.root, destination: f.destination)
        func write(_ index: Int, cuts: [Int], _ edit: (inout [UInt8]) -> Void = { _ in }) throws -> Bool {
            var bytes = f.bytes(of: index)
            edit(&bytes)
            let bounds = [0] + cuts.filter { $0 > 0 && $0 < bytes.count } + [bytes.count]
            return try bytes.withUnsafeBytes { raw throws(ChunkStoreError) -> Bool in
                let segments = zip(bounds, bounds.dropFirst()).map { UnsafeRawBufferPointer(rebasing: raw[$0..<$1]) }
                return try sink.write(index: index, segments: segments)
            }
        }
        let count = f.manifest.chunks.count
        // A flipped byte in the last block, and a missing last block: refused, nothing on disk.
        #expect(throws: ChunkStoreError.self) { _ = try write(0, cuts: [100, 5000]) { $0[$0.count - 1] ^= 1 } }
        #expect(throws: ChunkStoreError.self) { _ = try write(0, cuts: [100]) { $0.removeLast(7) } }
        #expect(try f.chunksPresentOnDisk().isEmpty)
        #expect(try write(0, cuts: [1, 2, 4096, 4097]))
        // Every byte a segment of its own: over IOV_MAX segments, so the write takes several pwritev calls.
        let single = f.bytes(of: 1).count
        #expect(single > FileDescriptor.maxSegmentsPerCall)
        #expect(try write(1, cuts: Array(1..<single)))
        for index in 2..<count { #expect(try write(index, cuts: [index * 997, index * 3001])) }
        #expect(try f.chunksPresentOnDisk() == Set(0..<count))
        try sink.finish()
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: f.destination))) == f.data)
    }

    /// A chunk read into a caller's buffer, from the partial file and from the store once indexed, is its bytes; a
    /// buffer of another length, or a chunk not written yet, reads nothing.
    @Test func aChunkIsReadIntoTheCallersBuffer() throws {
        let f = try Fixture()
        let store = try f.store()
        let sink = try store.openDownload(manifest: f.manifest, root: f.root, destination: f.destination)
        let length = f.manifest.chunks[3].length
        var buffer = [UInt8](repeating: 0, count: length)
        #expect(try buffer.withUnsafeMutableBytes { try sink.readChunk(3, into: $0) } == false)
        try sink.write(index: 3, bytes: f.bytes(of: 3))
        #expect(try buffer.withUnsafeMutableBytes { try sink.readChunk(3, into: $0) } == true)
        #expect(buffer == f.bytes(of: 3))
        var short = [UInt8](repeating: 0, count: length - 1)
        #expect(try short.withUnsafeMutableBytes { try sink.readChunk(3, into: $0) } == false)
        for index in 0..<f.manifest.chunks.count where index != 3 {
            try sink.write(index: index, bytes: f.bytes(of: index))
        }
        try sink.finish()
        _ = try store.index(file: f.destination, parameters: .small)
        buffer = [UInt8](repeating: 0, count: length)
        try buffer.withUnsafeMutableBytes { try store.readChunk(f.manifest.chunks[3].hash, into: $0) }
        #expect(buffer == f.bytes(of: 3))
        #expect(throws: ChunkStoreError.self) {
            try short.withUnsafeMutableBytes { try store.readChunk(f.manifest.chunks[3].hash, into: $0) }
        }
    }
}
