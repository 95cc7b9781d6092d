import Foundation
import Testing

@testable import ChunkStore

/// Provenance records (DESIGN §4): which server version a local file's bytes were established to be, valid only while
/// the file keeps the size, mtime and inode it had then.
@Suite("ChunkStore provenance")
struct ProvenanceTests {
    let version = ServerVersion(fileid: "98", etag: "\"abc\"", size: 200_000, mtime: 1_700_000_000)

    func indexedFile(_ dir: TemporaryDirectory, _ store: ChunkStore) throws -> (path: String, root: Hash256) {
        var random = SeededBytes(seed: 21)
        let path = try dir.write("f.bin", random.bytes(200_000))
        return (path, try store.index(file: path, parameters: .small).root)
    }

    @Test func aRecordHoldsWhileTheFileIsUnchanged() throws {
        let dir = try TemporaryDirectory()
        let store = try ChunkStore(path: dir.file("store.sqlite"))
        let (path, root) = try indexedFile(dir, store)
        try store.recordProvenance(path: path, root: root, server: version, source: .download)

        let record = try #require(try store.establishedProvenance(path: path, fileid: "98", etag: "\"abc\""))
        #expect(record.root == root && record.source == .download && record.server == version)
        // Another version of the file on the server: the record does not speak for it.
        #expect(try store.establishedProvenance(path: path, fileid: "98", etag: "\"new\"") == nil)
        #expect(try store.establishedProvenance(path: path, fileid: "99", etag: "\"abc\"") == nil)
        // A store opened again (another process) reads the same record.
        let reopened = try ChunkStore(path: dir.file("store.sqlite"))
        #expect(try reopened.establishedProvenance(path: path, fileid: "98", etag: "\"abc\"")?.root == root)
    }

    @Test func anEditedFileLosesItsProvenance() throws {
        let dir = try TemporaryDirectory()
        let store = try ChunkStore(path: dir.file("store.sqlite"))
        let (path, root) = try indexedFile(dir, store)
        try store.recordProvenance(path: path, root: root, server: version, source: .upload)
        // An edit in place, same size: the guard (mtime) moves, the record no longer holds.
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: 1000)
        try handle.write(contentsOf: [1, 2, 3])
        try handle.close()
        // Whatever the clock's granularity, the mtime moves.
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(5)], ofItemAtPath: path)
        #expect(try store.provenance(path: path) != nil)
        #expect(try store.establishedProvenance(path: path, fileid: "98", etag: "\"abc\"") == nil)
    }

    @Test func onlyTheIndexedRootOfAnUnchangedFileCanBeRecorded() throws {
        let dir = try TemporaryDirectory()
        let store = try ChunkStore(path: dir.file("store.sqlite"))
        let (path, root) = try indexedFile(dir, store)
        // A root that is not the file's.
        #expect(throws: ChunkStoreError.self) {
            try store.recordProvenance(path: path, root: Hash256.sha256([1]), server: version, source: .download)
        }
        // A server version of another size.
        var other = version
        other.size += 1
        #expect(throws: ChunkStoreError.self) {
            try store.recordProvenance(path: path, root: root, server: other, source: .download)
        }
        // A file changed since it was indexed: stale, nothing recorded.
        var random = SeededBytes(seed: 22)
        try Data(random.bytes(200_000)).write(to: URL(fileURLWithPath: path))
        #expect(throws: ChunkStoreError.stale(path: path)) {
            try store.recordProvenance(path: path, root: root, server: version, source: .download)
        }
        #expect(try store.provenance(path: path) == nil)
        // A file never indexed.
        let stranger = try dir.write("g.bin", [1, 2, 3])
        #expect(throws: ChunkStoreError.stale(path: stranger)) {
            try store.recordProvenance(
                path: stranger, root: root, server: ServerVersion(fileid: "1", etag: "e", size: 3, mtime: 0),
                source: .comparison)
        }
    }

    @Test func forgettingAFileForgetsItsProvenance() throws {
        let dir = try TemporaryDirectory()
        let store = try ChunkStore(path: dir.file("store.sqlite"))
        let (path, root) = try indexedFile(dir, store)
        try store.recordProvenance(path: path, root: root, server: version, source: .download)
        try store.forget(file: path)
        #expect(try store.provenance(path: path) == nil)
    }
}
