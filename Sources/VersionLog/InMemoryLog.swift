public import ChunkStore

/// An append-only version log held in memory: for tests, the benchmark and as the model of the server's log.
///
/// It stores every entry's encoding and a `Merkle.Tree` (two hashes a leaf), so a root, an inclusion proof or a
/// consistency proof at any size costs O(log² n) hashes and no pass over the leaves; a million entries of about 250
/// bytes take about 350 MB. It appends whatever it is given: checking authors, order and clock skew before an append
/// is the server's job (part B), and tests use that freedom to build hostile logs.
public struct InMemoryLog: Sendable {
    /// The log's checkpoint key (type `ed25519`); its name is the origin.
    public let key: NoteSigningKey
    private var entries: [[UInt8]] = []
    private var tree = Merkle.Tree()
    private var versionsByLineage: [Hash256: [Int]] = [:]
    private var enrollmentsByDevice: [DeviceKey: [Int]] = [:]

    /// An empty log signing with `key`.
    public init(key: NoteSigningKey) {
        precondition(key.verifierKey.type == .ed25519, "a log signs checkpoints with an ed25519 note key")
        self.key = key
    }

    /// The origin line of its checkpoints.
    public var origin: String { key.verifierKey.name }

    /// The number of entries.
    public var size: Int { tree.count }

    /// Appends an entry and returns its leaf index.
    @discardableResult
    public mutating func append(_ entry: LogEntry) -> Int {
        let bytes = entry.encoded
        let index = tree.append(leafHash: Merkle.leafHash(bytes))
        entries.append(bytes)
        switch entry {
        case .version(let version): versionsByLineage[version.lineage, default: []].append(index)
        case .enrollment(let enrollment): enrollmentsByDevice[enrollment.device, default: []].append(index)
        }
        return index
    }

    /// The entry at `index`, decoded.
    public func entry(at index: Int) -> LogEntry? {
        guard index >= 0, index < entries.count else { return nil }
        return try? LogEntry(encoded: entries[index])
    }

    /// The latest version of `lineage` and its leaf index.
    public func head(of lineage: Hash256) -> (entry: VersionEntry, leafIndex: Int)? {
        guard let index = versionsByLineage[lineage]?.last, case .version(let entry) = entry(at: index) else {
            return nil
        }
        return (entry, index)
    }

    /// The checkpoint of the first `size` entries (all of them by default).
    public func checkpoint(size: Int? = nil) -> Checkpoint {
        let size = size ?? self.size
        return Checkpoint(origin: origin, size: UInt64(size), rootHash: tree.root(size: size))
    }

    /// That checkpoint, signed by the log key.
    public func signedCheckpoint(size: Int? = nil) -> SignedNote { checkpoint(size: size).signed(by: key) }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves.
    public func inclusionProof(index: Int, size: Int) -> [Hash256]? { tree.inclusionProof(index: index, size: size) }

    /// The consistency proof between two sizes.
    public func consistencyProof(oldSize: Int, newSize: Int) -> [Hash256]? {
        tree.consistencyProof(oldSize: oldSize, newSize: newSize)
    }

    /// The `add-checkpoint` request for `note` (a checkpoint of this log) to a witness that last cosigned `oldSize`.
    public func addCheckpointRequest(oldSize: Int, note: SignedNote) -> AddCheckpointRequest? {
        guard let checkpoint = try? Checkpoint(text: note.text), let newSize = Int(exactly: checkpoint.size),
            let proof = consistencyProof(oldSize: oldSize, newSize: newSize)
        else { return nil }
        return AddCheckpointRequest(oldSize: UInt64(oldSize), consistencyProof: proof, checkpoint: note)
    }

    /// The proof bundle of `lineage` against the cosigned `checkpoint`, with `firstWitnessed` (the cosigned checkpoint
    /// at which the head was first witnessed); nil if a checkpoint is not one of this log's sizes or lacks the head.
    public func proofBundle(lineage: Hash256, checkpoint: SignedNote, firstWitnessed: SignedNote) -> ProofBundle? {
        guard let presented = try? Checkpoint(text: checkpoint.text),
            let first = try? Checkpoint(text: firstWitnessed.text),
            let size = Int(exactly: presented.size), let firstSize = Int(exactly: first.size), size <= self.size,
            let consistency = consistencyProof(oldSize: firstSize, newSize: size)
        else { return nil }
        let versions = (versionsByLineage[lineage] ?? []).filter { $0 < size }
        var devices: [DeviceKey] = []
        for index in versions {
            if case .version(let entry) = entry(at: index), !devices.contains(entry.authorDevice) {
                devices.append(entry.authorDevice)
            }
        }
        let enrollments = devices.flatMap { enrollmentsByDevice[$0] ?? [] }.filter { $0 < size }.sorted()
        func proven(_ index: Int) -> ProofBundle.ProvenEntry {
            ProofBundle.ProvenEntry(
                leafIndex: UInt64(index), entry: entries[index],
                inclusionProof: tree.inclusionProof(index: index, size: size) ?? [])
        }
        return ProofBundle(
            checkpoint: checkpoint, entries: versions.map(proven), enrollments: enrollments.map(proven),
            firstWitnessed: ProofBundle.FirstWitnessed(checkpoint: firstWitnessed, consistencyProof: consistency))
    }
}
