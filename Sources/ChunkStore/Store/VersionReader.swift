import Synchronization

/// An indexed file that holds one whole version (`ChunkStore.indexedFile(ofVersion:)`): where each of its chunks is,
/// valid while the file's guard holds.
struct VersionFile: Sendable, Equatable {
    var path: String
    var expected: FileGuard

    /// The chunk that starts at `offset` of the version and has `length` bytes.
    func location(offset: Int64, length: Int) -> ChunkLocation {
        ChunkLocation(path: path, offset: offset, length: length, kind: .indexedFile(expected: expected))
    }
}

/// Reads the chunks of one version from the store, for serving them: at the first read it looks up an indexed file
/// that holds the whole version, and reads each chunk at its offset there, the file's guard checked before and after
/// as for any location. Searching the index for every chunk (`readChunk(_:into:)`) was a fifth of a seeder's thread
/// pool on a loopback transfer; this costs one query per version and constant memory, whatever the version's size.
/// Once a read there fails (the file changed since it was indexed), every later chunk is searched in the index.
///
/// Thread-safe: reads may run on several threads at once.
public final class VersionReader: Sendable {
    public let store: ChunkStore
    public let manifest: Manifest
    let root: Hash256
    /// nil: not looked up yet; `.some(nil)`: no indexed file holds the version (or it changed).
    private let file = Mutex<VersionFile??>(nil)

    /// A reader of `manifest`'s chunks, whose content root is `root`, from `store`.
    public init(store: ChunkStore, manifest: Manifest, root: Hash256) {
        self.store = store
        self.manifest = manifest
        self.root = root
    }

    /// Reads chunk `index` of the version into `buffer`, which must be exactly the chunk's length.
    ///
    /// - Throws: `ChunkStoreError.chunkIndexOutOfRange`, or `readChunk(_:into:)`'s errors.
    public func readChunk(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws(ChunkStoreError) {
        guard index >= 0, index < manifest.chunks.count else {
            throw .chunkIndexOutOfRange(index, count: manifest.chunks.count)
        }
        let chunk = manifest.chunks[index]
        let known: VersionFile?
        if let looked = file.withLock({ $0 }) {
            known = looked
        } else {
            // Two reads at once may both look it up: the same answer, at most once per thread.
            known = (try? store.indexedFile(ofVersion: root)) ?? nil
            file.withLock { $0 = .some(known) }
        }
        let first = known?.location(offset: manifest.offsets[index], length: chunk.length)
        let used = try store.readChunk(chunk.hash, into: buffer, tryingFirst: first)
        if first != nil, used != first { file.withLock { $0 = .some(nil) } }
    }
}
