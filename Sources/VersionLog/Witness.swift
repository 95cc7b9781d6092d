public import ChunkStore

/// A tlog-witness as a pure state machine (c2sp.org/tlog-witness, `add-checkpoint`): no I/O, time passed in.
///
/// Per origin it keeps the size and root of the latest checkpoint it cosigned, and cosigns a new checkpoint only if
/// it is signed by a trusted key of that origin and provably extends that state. The server part persists `states`
/// (atomically with the answer, as the spec requires) and puts requests and answers on HTTP.
public struct Witness: Sendable {
    /// What the witness remembers of one log.
    public struct LogState: Hashable, Sendable {
        /// The size of the latest cosigned checkpoint.
        public var size: UInt64
        /// Its root hash.
        public var rootHash: Hash256

        /// A state from its parts.
        public init(size: UInt64, rootHash: Hash256) {
            self.size = size
            self.rootHash = rootHash
        }
    }

    /// The witness's cosigning key (type `cosignatureV1`).
    public let key: NoteSigningKey
    /// Trusted log keys by origin (each key's name is its origin).
    public let trustedLogs: [String: [NoteVerifierKey]]
    /// The latest cosigned state by origin.
    public private(set) var states: [String: LogState]

    /// A witness for the logs of `logKeys` (type `ed25519`, named by their origin), with saved `states` if any.
    public init(key: NoteSigningKey, logKeys: [NoteVerifierKey], states: [String: LogState] = [:]) {
        precondition(key.verifierKey.type == .cosignatureV1, "a witness signs with a cosignature/v1 key")
        self.key = key
        self.trustedLogs = Dictionary(grouping: logKeys, by: \.name)
        self.states = states
    }

    /// Handles one `add-checkpoint` request at `now` (unix seconds); on success the state moves to the checkpoint.
    public mutating func addCheckpoint(_ request: AddCheckpointRequest, now: UInt64) -> AddCheckpointResponse {
        let checkpoint: Checkpoint
        do {
            checkpoint = try Checkpoint(text: request.checkpoint.text)
        } catch {
            return .badRequest("not a checkpoint: \(error)")
        }
        guard let keys = trustedLogs[checkpoint.origin] else { return .unknownOrigin }
        guard let signers = try? request.checkpoint.verifiedSigners(among: keys), !signers.isEmpty else {
            return .forbidden
        }
        guard request.oldSize <= checkpoint.size else { return .badRequest("old size above the checkpoint size") }
        guard request.consistencyProof.count <= AddCheckpointRequest.maximumProofLines else {
            return .badRequest("too many proof lines")
        }
        let current = states[checkpoint.origin]
        let currentSize = current?.size ?? 0
        // The old size must be the size this witness last cosigned; a rollback or a stale client lands here.
        guard request.oldSize == currentSize else { return .conflict(latestSize: currentSize) }
        if let current {
            if current.size == checkpoint.size {
                // Same size, different root: a fork.
                guard current.rootHash == checkpoint.rootHash else { return .conflict(latestSize: currentSize) }
            } else {
                guard
                    let old = Int(exactly: current.size), let new = Int(exactly: checkpoint.size),
                    Merkle.verifyConsistency(
                        oldSize: old, newSize: new, oldRoot: current.rootHash, newRoot: checkpoint.rootHash,
                        proof: request.consistencyProof)
                else { return .inconsistent }
            }
        } else if !request.consistencyProof.isEmpty {
            return .inconsistent
        }
        states[checkpoint.origin] = LogState(size: checkpoint.size, rootHash: checkpoint.rootHash)
        let time = min(now, UInt64(Int64.max))
        return .cosigned([Cosignature.sign(checkpointText: request.checkpoint.text, time: time, key: key)])
    }

    /// `addCheckpoint` from its parts.
    public mutating func addCheckpoint(
        oldSize: UInt64, consistencyProof: [Hash256], signedCheckpoint: SignedNote, now: UInt64
    ) -> AddCheckpointResponse {
        addCheckpoint(
            AddCheckpointRequest(oldSize: oldSize, consistencyProof: consistencyProof, checkpoint: signedCheckpoint),
            now: now)
    }
}
