import Foundation
import Glibc
import Testing

@testable import ChunkStore

/// `DownloadSink.place`: the files of a bundle written out of one download, indexed with their provenance in one
/// transaction.
@Suite("Placing a bundle's files")
struct PlacementTests {
    /// Three files' bytes one after the other, chunked file by file, as a folder's bundle is.
    struct Bundle {
        let dir: TemporaryDirectory
        let files: [[UInt8]]
        let manifests: [Manifest]
        let manifest: Manifest
        let ranges: [Range<Int>]

        init() throws {
            dir = try TemporaryDirectory()
            var random = SeededBytes(seed: 7)
            files = [random.bytes(150_000), random.bytes(3), random.bytes(70_000)]
            let chunker = FastCDC(parameters: .small, table: .harpV1)
            manifests = try files.map { data in
                try Manifest(
                    parameters: .small,
                    chunks: chunker.chunks(of: data).map {
                        ChunkRef(
                            hash: Hash256.sha256(Array(data[$0.offset..<$0.offset + $0.length])), length: $0.length)
                    })
            }
            manifest = try Manifest(parameters: .small, chunks: manifests.flatMap(\.chunks))
            var start = 0
            ranges = manifests.map { m in
                defer { start += m.chunks.count }
                return start..<start + m.chunks.count
            }
        }

        /// A download of the whole bundle with every chunk written.
        func download(_ store: ChunkStore) throws -> DownloadSink {
            let sink = try store.openDownload(
                manifest: manifest, root: manifest.root, destination: dir.file(".bundle"))
            let all = files.flatMap { $0 }
            for index in 0..<manifest.chunks.count {
                let range = manifest.range(of: index)
                try sink.write(index: index, bytes: Array(all[Int(range.lowerBound)..<Int(range.upperBound)]))
            }
            try sink.flush()
            return sink
        }

        func placements(server: Bool = true) -> [DownloadSink.Placement] {
            (0..<files.count).map { i in
                DownloadSink.Placement(
                    destination: dir.file("f\(i).bin"), chunks: ranges[i], root: manifests[i].root,
                    server: server
                        ? ServerVersion(fileid: "\(i)", etag: "e\(i)", size: Int64(files[i].count), mtime: 1) : nil)
            }
        }
    }

    @Test func eachFileIsWrittenIndexedAndRecordedAsTheServersVersion() throws {
        let b = try Bundle()
        let store = try ChunkStore(path: b.dir.file("store.sqlite"))
        let sink = try b.download(store)
        let placed = try sink.place(b.placements())
        #expect(placed.count == 3)
        for i in 0..<3 {
            #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: b.dir.file("f\(i).bin")))) == b.files[i])
            #expect(!FileManager.default.fileExists(atPath: b.dir.file("f\(i).bin.harp-part")))
            let provenance = try #require(try store.provenance(path: b.dir.file("f\(i).bin")))
            #expect(provenance.root == b.manifests[i].root && provenance.server.etag == "e\(i)")
            #expect(
                try store.establishedProvenance(path: b.dir.file("f\(i).bin"), fileid: "\(i)", etag: "e\(i)") != nil)
        }
        // The placed files serve their chunks after the bundle's download is gone.
        try sink.discard()
        #expect(
            try store.readChunk(b.manifests[2].chunks[0].hash, verify: true).count == b.manifests[2].chunks[0].length)
    }

    @Test func aChunkCorruptedOnDiskStopsAtItsFileAndNothingOfItIsRenamed() throws {
        let b = try Bundle()
        let store = try ChunkStore(path: b.dir.file("store.sqlite"))
        let sink = try b.download(store)
        // Flip a byte of the last file's first chunk in the bundle's partial file.
        let offset = b.manifest.offsets[b.ranges[2].lowerBound] + 5
        let fd = open(b.dir.file(".bundle.harp-part"), O_RDWR)
        var byte: UInt8 = 0
        #expect(pread(fd, &byte, 1, off_t(offset)) == 1)
        byte ^= 0xFF
        #expect(pwrite(fd, &byte, 1, off_t(offset)) == 1)
        close(fd)
        #expect(throws: ChunkStoreError.self) { try sink.place(b.placements()) }
        #expect(!FileManager.default.fileExists(atPath: b.dir.file("f2.bin")))
        #expect(!FileManager.default.fileExists(atPath: b.dir.file("f2.bin.harp-part")))
        // The files before it are in place and indexed.
        #expect(try store.provenance(path: b.dir.file("f0.bin")) != nil)
        #expect(try store.provenance(path: b.dir.file("f2.bin")) == nil)
    }

    @Test func aSymbolicLinkAtThePartialNameIsRemovedNotFollowed() throws {
        let b = try Bundle()
        let store = try ChunkStore(path: b.dir.file("store.sqlite"))
        let sink = try b.download(store)
        let victim = try b.dir.write("victim", Array("keep me".utf8))
        try FileManager.default.createSymbolicLink(atPath: b.dir.file("f1.bin.harp-part"), withDestinationPath: victim)
        try sink.place(b.placements(server: false))
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: victim))) == Array("keep me".utf8))
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: b.dir.file("f1.bin")))) == b.files[1])
        #expect(try store.provenance(path: b.dir.file("f1.bin")) == nil)
    }

    @Test func chunksOutsideTheDownloadAreRefusedWithoutATrap() throws {
        let b = try Bundle()
        let store = try ChunkStore(path: b.dir.file("store.sqlite"))
        let sink = try b.download(store)
        var placements = b.placements()
        placements[1].chunks = b.manifest.chunks.count..<b.manifest.chunks.count + 2
        #expect(throws: ChunkStoreError.self) { try sink.place(placements) }
        #expect(!FileManager.default.fileExists(atPath: b.dir.file("f1.bin")))
        placements[1].chunks = 0..<0
        #expect(throws: ChunkStoreError.self) { try sink.place(placements) }
    }

    @Test func aFileWhoseChunksAreNotItsRootIsRefused() throws {
        let b = try Bundle()
        let store = try ChunkStore(path: b.dir.file("store.sqlite"))
        let sink = try b.download(store)
        var placements = b.placements()
        placements[0].root = b.manifests[1].root
        #expect(throws: ChunkStoreError.self) { try sink.place(placements) }
        #expect(!FileManager.default.fileExists(atPath: b.dir.file("f0.bin")))
    }
}
