/// One chunk of a version: its SHA-256 and its length in bytes.
public struct ChunkRef: Hashable, Sendable, Codable {
    public var hash: Hash256
    public var length: Int

    public init(hash: Hash256, length: Int) {
        self.hash = hash
        self.length = length
    }

    /// The Merkle leaf data of this chunk: the 32-byte hash followed by the length as a big-endian UInt64.
    ///
    /// Committing to the length as well as the hash lets a receiver lay out a file, and refuse a wrong length,
    /// before it has any bytes.
    public var leafHash: Hash256 {
        var data = [UInt8]()
        data.reserveCapacity(40)
        hash.withUnsafeBytes { data.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt64(length).bigEndian) { data.append(contentsOf: $0) }
        return Merkle.leafHash(data)
    }
}

/// The manifest of a file version: its size, the chunking parameters, and the ordered chunks.
///
/// Its content root R is the RFC 6962 Merkle root over the chunks' leaf hashes (see `ChunkRef.leafHash`).
/// A manifest received from anyone is checked with `verify(root:)` before use.
public struct Manifest: Hashable, Sendable {
    public let parameters: ChunkingParameters
    public let size: Int64
    public let chunks: [ChunkRef]
    /// offsets[i] is where chunk i starts; offsets has chunks.count + 1 entries, the last being `size`.
    public let offsets: [Int64]

    /// Builds a manifest; throws unless the chunks are non-empty, at most `parameters.maxSize`, and sum to a size.
    public init(parameters: ChunkingParameters, chunks: [ChunkRef]) throws(ChunkStoreError) {
        var offsets = [Int64]()
        offsets.reserveCapacity(chunks.count + 1)
        var offset: Int64 = 0
        for chunk in chunks {
            guard chunk.length > 0, chunk.length <= parameters.maxSize else {
                throw .manifestMismatch("chunk length \(chunk.length) outside 1...\(parameters.maxSize)")
            }
            offsets.append(offset)
            offset += Int64(chunk.length)
        }
        offsets.append(offset)
        self.parameters = parameters
        self.chunks = chunks
        self.size = offset
        self.offsets = offsets
    }

    /// The content root R.
    public var root: Hash256 { Merkle.root(leafHashes: chunks.lazy.map(\.leafHash)) }

    /// The byte range of chunk `index` in the file.
    public func range(of index: Int) -> Range<Int64> { offsets[index]..<offsets[index + 1] }

    /// Throws `manifestMismatch` unless this manifest's root is `root`.
    public func verify(root expected: Hash256) throws(ChunkStoreError) {
        let actual = root
        guard actual == expected else {
            throw .manifestMismatch("root \(actual.hex.prefix(16)) is not the expected \(expected.hex.prefix(16))")
        }
    }

    /// The inclusion proof of chunk `index` under the content root.
    public func inclusionProof(index: Int) -> [Hash256]? {
        Merkle.inclusionProof(index: index, leafHashes: chunks.map(\.leafHash))
    }

    /// Checks one chunk against a content root with its inclusion proof, before the whole manifest is known.
    public static func verifyChunk(
        _ chunk: ChunkRef,
        index: Int,
        chunkCount: Int,
        proof: [Hash256],
        root: Hash256
    ) -> Bool {
        Merkle.verifyInclusion(leafHash: chunk.leafHash, index: index, size: chunkCount, proof: proof, root: root)
    }
}
