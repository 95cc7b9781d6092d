public import ChunkStore
import Foundation

/// Why a proof bundle could not be read (a malformed bundle, not a failed proof).
public enum ProofBundleError: Error, Equatable, Sendable {
    /// Over the byte limit, checked before decoding.
    case tooLarge(size: Int, limit: Int)
    /// Not the documented JSON, or a value over its limit; `reason` names the field.
    case malformed(String)
}

/// Everything an offline verifier needs to check a file's history (docs/proofs.md §7), as JSON:
///
/// ```
/// {"format": "harp-proof-bundle/v1",
///  "checkpoint": "<signed checkpoint note with cosignatures>",
///  "entries": [{"leafIndex": 17, "entry": "<base64 LogEntry>", "inclusionProof": ["<base64 hash>", ...]}, ...],
///  "enrollments": [<same shape>, ...],
///  "firstWitnessed": {"checkpoint": "<note>", "consistencyProof": ["<base64 hash>", ...]}}
/// ```
/// `entries` is the lineage's chain, version 1 first; `enrollments` the enroll and revoke entries of its authors'
/// devices; `firstWitnessed` the cosigned checkpoint at which the head was first witnessed, with the consistency
/// proof from it to `checkpoint`.
public struct ProofBundle: Hashable, Sendable {
    /// One log entry with its leaf index and inclusion proof against `checkpoint`.
    public struct ProvenEntry: Hashable, Sendable {
        public var leafIndex: UInt64
        /// The entry's canonical encoding (`LogEntry.encoded`).
        public var entry: [UInt8]
        public var inclusionProof: [Hash256]

        /// An entry from its parts.
        public init(leafIndex: UInt64, entry: [UInt8], inclusionProof: [Hash256]) {
            self.leafIndex = leafIndex
            self.entry = entry
            self.inclusionProof = inclusionProof
        }
    }

    /// The checkpoint at which the head was first witnessed, and the proof that `checkpoint` extends it.
    public struct FirstWitnessed: Hashable, Sendable {
        public var checkpoint: SignedNote
        public var consistencyProof: [Hash256]

        /// From its parts.
        public init(checkpoint: SignedNote, consistencyProof: [Hash256]) {
            self.checkpoint = checkpoint
            self.consistencyProof = consistencyProof
        }
    }

    /// Limits applied when decoding.
    public struct Limits: Hashable, Sendable {
        public var maximumBytes = 32 * 1024 * 1024
        public var maximumEntries = 100_000
        public var maximumEnrollments = 10_000
        /// No RFC 6962 proof in a tree of fewer than 2^63 leaves is longer.
        public var maximumProofLength = 64

        /// The defaults: 32 MiB, 100,000 versions, 10,000 enrollments, 64 hashes a proof.
        public init() {}
    }

    public static let format = "harp-proof-bundle/v1"

    public var checkpoint: SignedNote
    public var entries: [ProvenEntry]
    public var enrollments: [ProvenEntry]
    public var firstWitnessed: FirstWitnessed

    /// A bundle from its parts.
    public init(
        checkpoint: SignedNote, entries: [ProvenEntry], enrollments: [ProvenEntry], firstWitnessed: FirstWitnessed
    ) {
        self.checkpoint = checkpoint
        self.entries = entries
        self.enrollments = enrollments
        self.firstWitnessed = firstWitnessed
    }

    private struct Wire: Codable {
        struct Entry: Codable {
            var leafIndex: UInt64
            var entry: String
            var inclusionProof: [String]
        }
        struct First: Codable {
            var checkpoint: String
            var consistencyProof: [String]
        }
        var format: String
        var checkpoint: String
        var entries: [Entry]
        var enrollments: [Entry]
        var firstWitnessed: First
    }

    /// The JSON form (keys sorted, so equal bundles give equal bytes).
    public func json() -> [UInt8] {
        func wire(_ entry: ProvenEntry) -> Wire.Entry {
            Wire.Entry(
                leafIndex: entry.leafIndex, entry: Base64.encode(entry.entry),
                inclusionProof: entry.inclusionProof.map { Base64.encode($0.bytes) })
        }
        let value = Wire(
            format: Self.format, checkpoint: checkpoint.formatted, entries: entries.map(wire),
            enrollments: enrollments.map(wire),
            firstWitnessed: Wire.First(
                checkpoint: firstWitnessed.checkpoint.formatted,
                consistencyProof: firstWitnessed.consistencyProof.map { Base64.encode($0.bytes) }))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return Array(try encoder.encode(value))
        } catch {
            preconditionFailure("encoding a proof bundle failed: \(error)")
        }
    }

    /// Decodes the JSON form; the byte limit is checked before parsing and every count and length after.
    public init(json: [UInt8], limits: Limits = Limits()) throws(ProofBundleError) {
        guard json.count <= limits.maximumBytes else { throw .tooLarge(size: json.count, limit: limits.maximumBytes) }
        let wire: Wire
        do {
            wire = try JSONDecoder().decode(Wire.self, from: Data(json))
        } catch {
            throw .malformed("not a proof bundle: \(error)")
        }
        guard wire.format == Self.format else { throw .malformed("format is not \(Self.format)") }
        guard wire.entries.count <= limits.maximumEntries, wire.enrollments.count <= limits.maximumEnrollments else {
            throw .malformed("more entries or enrollments than the limits")
        }
        func hashes(_ list: [String], _ field: String) throws(ProofBundleError) -> [Hash256] {
            guard list.count <= limits.maximumProofLength else { throw .malformed("\(field) is too long") }
            var out: [Hash256] = []
            for text in list {
                guard let raw = Base64.decode(text), let hash = Hash256(bytes: raw) else {
                    throw .malformed("\(field) holds something other than base64 of 32 bytes")
                }
                out.append(hash)
            }
            return out
        }
        func entry(_ wire: Wire.Entry) throws(ProofBundleError) -> ProvenEntry {
            guard wire.entry.utf8.count <= (LogEntry.maximumEncodedSize + 2) / 3 * 4,
                let raw = Base64.decode(wire.entry)
            else { throw .malformed("an entry is the base64 of at most \(LogEntry.maximumEncodedSize) bytes") }
            return ProvenEntry(
                leafIndex: wire.leafIndex, entry: raw, inclusionProof: try hashes(wire.inclusionProof, "inclusionProof")
            )
        }
        func note(_ text: String) throws(ProofBundleError) -> SignedNote {
            do {
                return try SignedNote(parsing: text)
            } catch {
                throw .malformed("a checkpoint is not a signed note: \(error)")
            }
        }
        self.init(
            checkpoint: try note(wire.checkpoint),
            entries: try wire.entries.map(entry),
            enrollments: try wire.enrollments.map(entry),
            firstWitnessed: FirstWitnessed(
                checkpoint: try note(wire.firstWitnessed.checkpoint),
                consistencyProof: try hashes(wire.firstWitnessed.consistencyProof, "consistencyProof")))
    }
}
