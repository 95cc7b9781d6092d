/// Why a proof bundle does not prove the history it carries; `description` is the reason a person reads.
public enum ProofError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformedEntry(leafIndex: UInt64, LogEncodingError)
    case notAVersionEntry(leafIndex: UInt64)
    case notAnEnrollment(leafIndex: UInt64)
    case emptyChain
    case lineageMismatch(version: UInt64)
    /// Versions not numbered 1, 2, 3, ... in the bundle: a removed or reordered version.
    case versionGap(expected: UInt64, found: UInt64)
    /// The version's leaf does not come after the previous version's leaf: reordered in the log.
    case outOfLogOrder(version: UInt64)
    /// `previousHash` is not the previous version's `h_n`.
    case chainBroken(version: UInt64)
    /// `h_n` is not SHA3-256(serialize(meta_n) || h_{n-1}): a modified entry.
    case chainHashMismatch(version: UInt64)
    case badAuthorSignature(version: UInt64)
    case badEnrollmentAttestation(leafIndex: UInt64)
    case authorNotEnrolled(version: UInt64)
    case authorEnrolledAfterVersion(version: UInt64)
    case authorRevoked(version: UInt64)
    case notIncluded(leafIndex: UInt64)
    case malformedCheckpoint(String)
    case wrongOrigin(String)
    case badLogSignature
    case badCosignature(name: String)
    /// Fewer distinct witness keys than the quorum; `ignored` says why other cosignatures did not count.
    case quorumNotMet(counted: Int, required: Int, ignored: [String])
    /// The newest quorum of cosignatures is older than the allowed age.
    case staleCheckpoint(quorumTime: UInt64, now: Int64, maxAge: Int64)
    /// The first-witnessed checkpoint does not hold the head or is larger than the presented one.
    case firstWitnessedDoesNotHoldHead
    /// The presented checkpoint does not extend the first-witnessed one: a fork.
    case inconsistentCheckpoints
    case duplicateEntry(leafIndex: UInt64)

    public var description: String {
        switch self {
        case .malformedEntry(let index, let error): "entry at leaf \(index) is malformed: \(error)"
        case .notAVersionEntry(let index): "leaf \(index) is not a version entry"
        case .notAnEnrollment(let index): "leaf \(index) is not an enrollment entry"
        case .emptyChain: "the bundle holds no version"
        case .lineageMismatch(let v): "version \(v) belongs to another file"
        case .versionGap(let expected, let found): "expected version \(expected), found \(found)"
        case .outOfLogOrder(let v): "version \(v) stands before its predecessor in the log"
        case .chainBroken(let v): "version \(v) does not link to the previous version"
        case .chainHashMismatch(let v): "version \(v) was modified: its chain hash does not match its fields"
        case .badAuthorSignature(let v): "version \(v) is not signed by its author's device"
        case .badEnrollmentAttestation(let index): "the enrollment at leaf \(index) is not attested by the log"
        case .authorNotEnrolled(let v): "the author of version \(v) has no enrollment"
        case .authorEnrolledAfterVersion(let v): "the author of version \(v) was enrolled after it"
        case .authorRevoked(let v): "the author's device of version \(v) was revoked before it"
        case .notIncluded(let index): "leaf \(index) is not included in the checkpoint"
        case .malformedCheckpoint(let reason): "malformed checkpoint: \(reason)"
        case .wrongOrigin(let origin): "checkpoint origin \(origin) is not the policy's log"
        case .badLogSignature: "the checkpoint is not signed by the policy's log key"
        case .badCosignature(let name): "the cosignature of \(name) does not verify"
        case .quorumNotMet(let counted, let required, let ignored):
            "\(counted) of \(required) required witnesses cosigned"
                + (ignored.isEmpty ? "" : " (ignored: \(ignored.joined(separator: "; ")))")
        case .staleCheckpoint(let time, let now, let maxAge):
            "the checkpoint's quorum was reached at \(time), more than \(maxAge) s before \(now)"
        case .firstWitnessedDoesNotHoldHead: "the first-witnessed checkpoint does not hold the head"
        case .inconsistentCheckpoints: "the checkpoint does not extend the first-witnessed checkpoint (a fork)"
        case .duplicateEntry(let index): "leaf \(index) appears twice"
        }
    }
}
