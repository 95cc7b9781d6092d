import ChunkStore

/// Checks a proof bundle offline against a witness policy (docs/proofs.md §8).
///
/// In order: the presented checkpoint's log signature; every version (decoded, numbered 1, 2, 3, ... in the bundle,
/// one lineage, leaves in increasing order, linked by `previousHash`, `h_n` recomputed, the author's signature,
/// included in the checkpoint); every enrollment (attested by the log key, included); each author's device enrolled
/// for that user at an earlier leaf and not revoked since; a quorum of distinct witness keys on the checkpoint, each
/// cosignature no earlier than the newest entry minus `clockSkew` and no later than `now` plus `clockSkew`; its age
/// against `maxAge`; and the first-witnessed checkpoint (log signature, quorum, holds the head, and the presented
/// checkpoint extends it by a consistency proof).
public struct ProofVerifier: Sendable {
    /// Ten minutes: how far a device's or a witness's clock may be off.
    public static let defaultClockSkew: Int64 = 600

    public var policy: WitnessPolicy
    /// The verifier's clock, unix seconds.
    public var now: Int64
    public var clockSkew: Int64
    /// If set, the quorum of cosignatures on the presented checkpoint must be at most this many seconds old.
    public var maxAge: Int64?

    /// A verifier for `policy` at time `now`.
    public init(policy: WitnessPolicy, now: Int64, clockSkew: Int64 = defaultClockSkew, maxAge: Int64? = nil) {
        self.policy = policy
        self.now = now
        self.clockSkew = clockSkew
        self.maxAge = maxAge
    }

    /// Verifies `bundle`; throws the first reason it does not prove the history.
    public func verify(_ bundle: ProofBundle) throws(ProofError) -> VerifiedHistory {
        let checkpoint = try checkpointSignedByLog(bundle.checkpoint)
        let chain = try verifiedChain(bundle.entries, checkpoint: checkpoint)
        let enrollments = try verifiedEnrollments(bundle.enrollments, checkpoint: checkpoint)
        for (entry, leafIndex) in chain { try checkEnrollment(of: entry, at: leafIndex, in: enrollments) }
        let newest = chain.map { $0.entry.time }.max() ?? 0
        let presented = try witnessed(bundle.checkpoint, notBefore: newest)
        if let maxAge {
            let quorumTime = presented.times.sorted(by: >)[policy.quorum - 1]
            guard now - Int64(quorumTime) <= maxAge else {
                throw .staleCheckpoint(quorumTime: quorumTime, now: now, maxAge: maxAge)
            }
        }
        // The head's first witnessed checkpoint: the head existed by its cosignature times.
        guard let head = chain.last else { throw .emptyChain }
        let first = try checkpointSignedByLog(bundle.firstWitnessed.checkpoint)
        guard first.size > head.leafIndex, first.size <= checkpoint.size else { throw .firstWitnessedDoesNotHoldHead }
        guard
            let oldSize = Int(exactly: first.size), let newSize = Int(exactly: checkpoint.size),
            Merkle.verifyConsistency(
                oldSize: oldSize, newSize: newSize, oldRoot: first.rootHash, newRoot: checkpoint.rootHash,
                proof: bundle.firstWitnessed.consistencyProof)
        else { throw .inconsistentCheckpoints }
        let headWitnessed = try witnessed(bundle.firstWitnessed.checkpoint, notBefore: head.entry.time)
        return VerifiedHistory(
            lineage: head.entry.lineage.hex,
            versions: chain.map { link in
                let entry = link.entry
                return VerifiedHistory.Version(
                    number: entry.version, operation: entry.operation, authorUser: entry.authorUser,
                    authorDevice: entry.authorDevice, size: entry.size, time: entry.time, leafIndex: link.leafIndex,
                    chainHash: entry.chainHash.hex)
            },
            origin: checkpoint.origin, checkpointSize: checkpoint.size, checkpointWitnessed: presented.bounds,
            headWitnessed: headWitnessed.bounds, witnesses: presented.names)
    }

    private func checkpointSignedByLog(_ note: SignedNote) throws(ProofError) -> Checkpoint {
        let checkpoint: Checkpoint
        do {
            checkpoint = try Checkpoint(text: note.text)
        } catch {
            throw .malformedCheckpoint("\(error)")
        }
        guard checkpoint.origin == policy.log.name else { throw .wrongOrigin(checkpoint.origin) }
        guard let signers = try? note.verifiedSigners(among: [policy.log]), signers == [policy.log] else {
            throw .badLogSignature
        }
        return checkpoint
    }

    private func verifiedChain(
        _ proven: [ProofBundle.ProvenEntry], checkpoint: Checkpoint
    ) throws(ProofError) -> [(entry: VersionEntry, leafIndex: UInt64)] {
        guard !proven.isEmpty else { throw .emptyChain }
        var chain: [(entry: VersionEntry, leafIndex: UInt64)] = []
        for item in proven {
            guard case .version(let entry) = try decode(item) else {
                throw .notAVersionEntry(leafIndex: item.leafIndex)
            }
            let expected = (chain.last?.entry.version ?? 0) + 1
            guard entry.version == expected else { throw .versionGap(expected: expected, found: entry.version) }
            if let previous = chain.last {
                guard entry.lineage == previous.entry.lineage else { throw .lineageMismatch(version: entry.version) }
                guard item.leafIndex > previous.leafIndex else { throw .outOfLogOrder(version: entry.version) }
                guard entry.previousHash == previous.entry.chainHash else { throw .chainBroken(version: entry.version) }
            } else {
                guard entry.previousHash == .zero else { throw .chainBroken(version: entry.version) }
            }
            guard entry.computedChainHash == entry.chainHash else { throw .chainHashMismatch(version: entry.version) }
            guard entry.hasValidSignature else { throw .badAuthorSignature(version: entry.version) }
            try checkInclusion(item, checkpoint: checkpoint)
            chain.append((entry, item.leafIndex))
        }
        return chain
    }

    private func verifiedEnrollments(
        _ proven: [ProofBundle.ProvenEntry], checkpoint: Checkpoint
    ) throws(ProofError) -> [(entry: EnrollmentEntry, leafIndex: UInt64)] {
        var seen = Set<UInt64>()
        var out: [(entry: EnrollmentEntry, leafIndex: UInt64)] = []
        for item in proven {
            guard seen.insert(item.leafIndex).inserted else { throw .duplicateEntry(leafIndex: item.leafIndex) }
            guard case .enrollment(let entry) = try decode(item) else {
                throw .notAnEnrollment(leafIndex: item.leafIndex)
            }
            guard entry.isAttested(by: policy.log) else { throw .badEnrollmentAttestation(leafIndex: item.leafIndex) }
            try checkInclusion(item, checkpoint: checkpoint)
            out.append((entry, item.leafIndex))
        }
        return out.sorted { $0.leafIndex < $1.leafIndex }
    }

    /// The author's device must be enrolled for the author's user at an earlier leaf, and not revoked since.
    private func checkEnrollment(
        of entry: VersionEntry, at leafIndex: UInt64, in enrollments: [(entry: EnrollmentEntry, leafIndex: UInt64)]
    ) throws(ProofError) {
        let relevant = enrollments.filter { $0.entry.device == entry.authorDevice && $0.entry.user == entry.authorUser }
        guard let last = relevant.last(where: { $0.leafIndex < leafIndex }) else {
            throw relevant.isEmpty
                ? ProofError.authorNotEnrolled(version: entry.version)
                : ProofError.authorEnrolledAfterVersion(version: entry.version)
        }
        guard last.entry.action == .enroll else { throw .authorRevoked(version: entry.version) }
    }

    private func decode(_ item: ProofBundle.ProvenEntry) throws(ProofError) -> LogEntry {
        do {
            return try LogEntry(encoded: item.entry)
        } catch {
            throw .malformedEntry(leafIndex: item.leafIndex, error)
        }
    }

    private func checkInclusion(_ item: ProofBundle.ProvenEntry, checkpoint: Checkpoint) throws(ProofError) {
        guard
            let index = Int(exactly: item.leafIndex), let size = Int(exactly: checkpoint.size),
            Merkle.verifyInclusion(
                leafHash: Merkle.leafHash(item.entry), index: index, size: size, proof: item.inclusionProof,
                root: checkpoint.rootHash)
        else { throw .notIncluded(leafIndex: item.leafIndex) }
    }

    /// Counts the cosignatures of distinct policy keys on `note`, each timed within [notBefore - skew, now + skew].
    private func witnessed(
        _ note: SignedNote, notBefore: Int64
    ) throws(ProofError) -> (names: [String], times: [UInt64], bounds: VerifiedHistory.WitnessedTimes) {
        var counted: [[UInt8]: (name: String, time: UInt64)] = [:]
        var ignored: [String] = []
        for signature in note.signatures {
            for witness in policy.witnesses where signature.names(witness.key) {
                guard let time = Cosignature.verify(signature, checkpointText: note.text, key: witness.key) else {
                    throw .badCosignature(name: witness.name)
                }
                if time > UInt64(max(now + clockSkew, 0)) {
                    ignored.append("\(witness.name): timestamp \(time) is in the future")
                } else if Int64(time) < notBefore - clockSkew {
                    ignored.append("\(witness.name): timestamp \(time) is before the entries it covers")
                } else if counted[witness.key.publicKey] != nil {
                    ignored.append("\(witness.name): key already counted")
                } else {
                    counted[witness.key.publicKey] = (witness.name, time)
                }
            }
        }
        guard counted.count >= policy.quorum else {
            throw .quorumNotMet(counted: counted.count, required: policy.quorum, ignored: ignored)
        }
        let times = counted.values.map { $0.time }.sorted()
        let bounds = VerifiedHistory.WitnessedTimes(
            earliest: times[0], latest: times[times.count - 1], quorumReached: times[policy.quorum - 1])
        return (counted.values.map { $0.name }.sorted(), times, bounds)
    }
}
