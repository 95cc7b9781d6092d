/// ChunkStore: content-defined chunking, SHA-256 chunk hashing, RFC 6962 Merkle trees, and the SQLite index
/// of versions, chunks, their locations on disk and per-download state.
public enum ChunkStoreModule {}
