import ChunkStore
import Crypto
import Foundation
import Testing

@testable import SwarmKit

/// The folder sidecar of a bundle of small files (issue 15, item 1): what a reader accepts, and how the bundle's
/// manifest must match the files it lists before a byte is written.
@Suite("Folder sidecar")
struct FolderSidecarTests {
    let key = Curve25519.Signing.PrivateKey()

    /// Small chunks, so that a bundled file can have two.
    static let parameters = ChunkingParameters(
        minSize: 64 * 1024, avgSize: 128 * 1024, maxSize: 256 * 1024, normalization: 1, gear: GearTable.harpV1Name)

    /// Two small files of one chunk and one of two chunks (the first at the chunking's minimum).
    static let manifests: [Manifest] = [
        try! Manifest(parameters: parameters, chunks: [ChunkRef(hash: .sha256([1]), length: 10_000)]),
        try! Manifest(
            parameters: parameters,
            chunks: [
                ChunkRef(hash: .sha256([2]), length: parameters.minSize),
                ChunkRef(hash: .sha256([3]), length: 5),
            ]),
        try! Manifest(parameters: parameters, chunks: [ChunkRef(hash: .sha256([4]), length: 1)]),
    ]

    static func entries(_ manifests: [Manifest] = manifests) -> [FolderSidecar.Entry] {
        manifests.enumerated().map { index, manifest in
            FolderSidecar.Entry(
                path: index == 1 ? "day1/b.bin" : "f\(index).bin", fileid: "\(100 + index)", etag: "e\(index)",
                size: manifest.size, mtime: 1_700_000_000, root: manifest.root)
        }
    }

    func make(_ files: [FolderSidecar.Entry] = entries(), root: Hash256? = nil) throws -> FolderSidecar {
        let bundle = try FolderSidecar.bundle(Self.manifests)
        return try FolderSidecar(
            files: files, chunking: Self.parameters, root: root ?? bundle.root, salt: Sidecar.randomSalt(),
            writerKey: Array(key.publicKey.rawRepresentation), sign: { Array(try key.signature(for: Data($0))) })
    }

    @Test func roundTripsAndLaysOutItsFiles() throws {
        let sidecar = try make()
        let parsed = try FolderSidecar(json: sidecar.encoded())
        #expect(parsed == sidecar)
        #expect(parsed.size == Self.manifests.reduce(0) { $0 + $1.size })
        let bundle = try FolderSidecar.bundle(Self.manifests)
        #expect(try parsed.layout(of: bundle) == [0..<1, 1..<3, 3..<4])
        #expect(parsed.swarmKeys.swarmID != Sidecar.randomSalt())
    }

    @Test func aChangedEntryBreaksTheSignature() throws {
        let sidecar = try make()
        var changed = sidecar
        changed.files[1].etag = "other"
        #expect(throws: SidecarError.badSignature) { try FolderSidecar(json: changed.encoded()) }
        changed = sidecar
        changed.files.swapAt(0, 2)
        #expect(throws: SidecarError.badSignature) { try FolderSidecar(json: changed.encoded()) }
        changed = sidecar
        changed.files.removeLast()
        #expect(throws: SidecarError.badSignature) { try FolderSidecar(json: changed.encoded()) }
    }

    @Test(arguments: ["../x", "a/../b", "a//b", "/abs", "tail/", ".harp/f", "a/.harp/f", "line\nbreak", ".", ""])
    func pathsOutsideTheFolderOrIntoSidecarsAreRefused(path: String) throws {
        #expect(!FolderSidecar.isAcceptablePath(path))
        var files = Self.entries()
        files[0].path = path
        // Signed by its writer, and still refused: the writer is not trusted with the reader's disk.
        #expect(throws: SidecarError.self) { try FolderSidecar(json: try make(files).encoded()) }
    }

    @Test func repeatedPathsLargeFilesAndOversizeDocumentsAreRefused() throws {
        var files = Self.entries()
        files[2].path = files[0].path
        #expect(throws: SidecarError.self) { try FolderSidecar(json: try make(files).encoded()) }
        files = Self.entries()
        files[0].size = FolderSidecar.maxFileSize + 1
        #expect(throws: SidecarError.self) { try FolderSidecar(json: try make(files).encoded()) }
        let huge = [UInt8](repeating: 0x20, count: FolderSidecar.maxEncodedSize + 1)
        #expect(throws: SidecarError.malformed("larger than 32 MiB")) { try FolderSidecar(json: huge) }
    }

    @Test func aBundleThatDoesNotSplitAtTheFilesOrHashToTheirRootsIsRefused() throws {
        // The chunks of file 1 moved into file 0: the sizes no longer split the bundle at a chunk boundary.
        var files = Self.entries()
        files[0].size += 1
        files[1].size -= 1
        #expect(throws: ChunkStoreError.self) { try make(files).layout(of: try FolderSidecar.bundle(Self.manifests)) }
        // A file whose listed root is not the root of its chunks.
        files = Self.entries()
        files[2].root = Hash256.sha256([9])
        #expect(throws: ChunkStoreError.self) { try make(files).layout(of: try FolderSidecar.bundle(Self.manifests)) }
        // Chunks left over after the last file.
        files = Array(Self.entries().dropLast())
        #expect(throws: ChunkStoreError.self) { try make(files).layout(of: try FolderSidecar.bundle(Self.manifests)) }
    }

    @Test func theManifestBoundAllowsOneShortChunkPerFile() throws {
        let bundle = try FolderSidecar.bundle(Self.manifests)
        var options = SwarmEngine.Options()
        let single = SwarmEngine(
            root: bundle.root, chunking: Self.parameters, expectedSize: bundle.size,
            localKey: Array(repeating: 1, count: 32), options: options, seed: 1)
        // As one file, the bundle's four chunks exceed what its size allows (two short chunks).
        #expect(single.chunkCountBound < bundle.chunks.count)
        options.filesInVersion = Self.manifests.count
        let bundled = SwarmEngine(
            root: bundle.root, chunking: Self.parameters, expectedSize: bundle.size,
            localKey: Array(repeating: 1, count: 32), options: options, seed: 1)
        #expect(bundled.chunkCountBound >= bundle.chunks.count)
    }
}
