import ChunkStore
import Crypto
import Foundation
import Testing

@testable import VersionLog

/// The vectors copied from `../shared/vectors` into `Vectors/` (see its README).
enum SharedVectors {
    static func data(_ name: String) throws -> Data {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Vectors"))
        return try Data(contentsOf: url)
    }

    /// One record of signed-note-examples.txt: its id, its `key: value` fields and its exact bytes.
    struct NoteExample {
        var id: String
        var fields: [String: String]
        var body: String
    }

    static func noteExamples() throws -> [NoteExample] {
        let text = String(decoding: try data("signed-note-examples.txt"), as: UTF8.self)
        var examples: [NoteExample] = []
        var current: NoteExample?
        var inBody = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("=== example: ") {
                current = NoteExample(id: String(line.dropFirst(13)), fields: [:], body: "")
                inBody = false
            } else if line == "=== end" {
                if let done = current { examples.append(done) }
                current = nil
            } else if line.hasPrefix("--- "), current != nil, !inBody {
                inBody = true
            } else if inBody {
                current?.body += line + "\n"
            } else if current != nil, let colon = line.firstIndex(of: ":") {
                current?.fields[String(line[..<colon])] = String(line[line.index(colon, offsetBy: 2)...])
            }
        }
        return examples
    }
}

/// A log, three witnesses and two enrolled authors, for building honest and hostile histories.
struct World {
    static let t0: Int64 = 1_800_000_000

    let logKey: NoteSigningKey
    let witnessPrivateKeys = (1...3).map { _ in Curve25519.Signing.PrivateKey() }
    let witnessKeys: [NoteSigningKey]
    var log: InMemoryLog
    var witnesses: [Witness]
    let alice = Curve25519.Signing.PrivateKey()
    let bob = Curve25519.Signing.PrivateKey()
    let lineage = VersionEntry.lineage(instance: "https://cloud.example", fileID: "1234")
    var head: VersionEntry?
    var clock: Int64 = World.t0

    init() throws {
        logKey = try NoteSigningKey.generate(name: "signal.example/log", type: .ed25519)
        witnessKeys = try witnessPrivateKeys.enumerated().map {
            try NoteSigningKey(name: "w\($0.offset + 1).example/witness", type: .cosignatureV1, privateKey: $0.element)
        }
        log = InMemoryLog(key: logKey)
        let logVerifierKey = logKey.verifierKey
        witnesses = witnessKeys.map { Witness(key: $0, logKeys: [logVerifierKey]) }
    }

    /// A 2-of-3 policy (or `quorum` of the three).
    func policy(quorum: Int = 2) throws -> WitnessPolicy {
        try WitnessPolicy(
            log: logKey.verifierKey,
            witnesses: witnessKeys.enumerated().map { .init(name: "w\($0.offset + 1)", key: $0.element.verifierKey) },
            quorum: quorum)
    }

    func verifier(quorum: Int = 2, maxAge: Int64? = nil) throws -> ProofVerifier {
        ProofVerifier(policy: try policy(quorum: quorum), now: clock + 60, maxAge: maxAge)
    }

    mutating func tick(_ seconds: Int64 = 10) -> Int64 {
        clock += seconds
        return clock
    }

    @discardableResult
    mutating func enroll(
        _ device: Curve25519.Signing.PrivateKey, _ user: String, _ action: EnrollmentEntry.Action = .enroll
    ) throws -> Int {
        let entry = try EnrollmentEntry.attested(
            action, device: DeviceKey(device.publicKey), user: user, time: tick(), logKey: logKey)
        return log.append(.enrollment(entry))
    }

    /// Signs the next version of the lineage; `append` false returns it without logging it.
    @discardableResult
    mutating func version(
        by device: Curve25519.Signing.PrivateKey, _ user: String, _ operation: VersionOperation = .modify,
        append: Bool = true
    ) throws -> VersionEntry {
        let number = (head?.version ?? 0) + 1
        let entry = try VersionEntry.signed(
            lineage: lineage, previous: head, operation: head == nil ? .create : operation,
            contentRoot: Hash256.sha256(Array("content \(number)".utf8)), size: 1000 * number,
            etag: "\"etag-\(number)\"", authorUser: user, time: tick(), device: device)
        if append {
            log.append(.version(entry))
            head = entry
        }
        return entry
    }

    /// Entries of some other file, to put distance between leaves.
    mutating func filler(_ count: Int) throws {
        let other = Curve25519.Signing.PrivateKey()
        var previous: VersionEntry?
        for _ in 0..<count {
            let entry = try VersionEntry.signed(
                lineage: VersionEntry.lineage(instance: "https://cloud.example", fileID: "other"), previous: previous,
                operation: .modify, contentRoot: .zero, size: 1, etag: "x", authorUser: "carol", time: tick(1),
                device: other)
            log.append(.version(entry))
            previous = entry
        }
    }

    /// The current checkpoint, cosigned by the witnesses at `indices` (each sent the proof from its own state).
    mutating func cosign(_ indices: [Int] = [0, 1, 2], note: SignedNote? = nil) throws -> SignedNote {
        let note = note ?? log.signedCheckpoint()
        let time = UInt64(tick())
        var lines: [NoteSignature] = []
        for i in indices {
            let old = Int(witnesses[i].states[log.origin]?.size ?? 0)
            let request = try #require(log.addCheckpointRequest(oldSize: old, note: note))
            let answer = witnesses[i].addCheckpoint(request, now: time)
            guard case .cosigned(let signed) = answer else {
                Issue.record("witness \(i) refused: \(answer)")
                continue
            }
            lines += signed
        }
        return note.adding(lines)
    }

    /// Alice and Bob enrolled, three versions (alice, bob, alice), witnessed, then more entries and a newer checkpoint.
    static func honest() throws -> (world: World, first: SignedNote) {
        var world = try World()
        try world.enroll(world.alice, "alice")
        try world.enroll(world.bob, "bob")
        try world.filler(5)
        try world.version(by: world.alice, "alice")
        try world.filler(3)
        try world.version(by: world.bob, "bob")
        try world.version(by: world.alice, "alice")
        let first = try world.cosign()
        try world.filler(7)
        return (world, first)
    }

    /// Appends `entry` as the lineage's new head.
    mutating func append(_ entry: VersionEntry) {
        log.append(.version(entry))
        head = entry
    }

    /// Witnesses the head now, adds a few entries, and returns the bundle against a newer cosigned checkpoint.
    mutating func witnessedBundle() throws -> ProofBundle {
        let first = try cosign()
        try filler(2)
        return try bundle(first: first)
    }

    /// The bundle of the lineage against a newly cosigned checkpoint.
    mutating func bundle(first: SignedNote, witnesses indices: [Int] = [0, 1, 2]) throws -> ProofBundle {
        let note = try cosign(indices)
        return try #require(log.proofBundle(lineage: lineage, checkpoint: note, firstWitnessed: first))
    }
}

/// Runs `verify` and returns the error it throws (nil if it passed).
func failure(_ verifier: ProofVerifier, _ bundle: ProofBundle) -> ProofError? {
    do {
        _ = try verifier.verify(bundle)
        return nil
    } catch {
        return error
    }
}
