import ChunkStore
import Crypto
import Testing

@testable import VersionLog

/// The offline verifier: an honest history verifies, and each attack is refused for its own reason.
@Suite("Proof verifier")
struct VerifierTests {
    @Test func anHonestHistoryVerifies() throws {
        let honest = try World.honest()
        var world = honest.world
        let first = honest.first
        let bundle = try world.bundle(first: first)
        let history = try world.verifier().verify(try ProofBundle(json: bundle.json()))
        #expect(history.versions.map(\.number) == [1, 2, 3])
        #expect(history.versions.map(\.operation) == [.create, .modify, .modify])
        #expect(history.versions.map(\.authorUser) == ["alice", "bob", "alice"])
        #expect(history.versions[1].authorDevice == DeviceKey(world.bob.publicKey))
        #expect(history.versions.map(\.size) == [1000, 2000, 3000])
        #expect(history.checkpointSize == 20)
        #expect(history.witnesses == ["w1", "w2", "w3"])
        #expect(history.headWitnessed.latest < history.checkpointWitnessed.earliest)
        #expect(history.checkpointWitnessed.earliest <= history.checkpointWitnessed.quorumReached)
        // The head's first witnessed checkpoint may be the presented one.
        let same = try #require(world.log.proofBundle(lineage: world.lineage, checkpoint: first, firstWitnessed: first))
        #expect(try world.verifier().verify(same).versions.count == 3)
    }

    /// Fork: two checkpoints that each have a quorum (the witnesses' state was split), the presented one from a tree
    /// that rewrote an entry before the first-witnessed size: the consistency proof does not link.
    @Test func forkedCheckpointsDoNotLink() throws {
        let honest = try World.honest()
        var world = honest.world
        let first = honest.first
        var fork = InMemoryLog(key: world.logKey)
        for index in 0..<world.log.size {
            let entry = try #require(world.log.entry(at: index))
            try fork.append(
                index == 3
                    ? .enrollment(
                        .attested(
                            .enroll, device: DeviceKey(world.bob.publicKey), user: "mallory", time: 1,
                            logKey: world.logKey)) : entry)
        }
        var splitWitnesses = world.witnessKeys.map { Witness(key: $0, logKeys: [world.logKey.verifierKey]) }
        var lines: [NoteSignature] = []
        let note = fork.signedCheckpoint()
        for i in splitWitnesses.indices {
            guard
                case .cosigned(let signed) = splitWitnesses[i].addCheckpoint(
                    oldSize: 0, consistencyProof: [], signedCheckpoint: note, now: UInt64(world.tick()))
            else {
                throw Failure("refused")
            }
            lines += signed
        }
        let bundle = try #require(
            fork.proofBundle(lineage: world.lineage, checkpoint: note.adding(lines), firstWitnessed: first))
        #expect(failure(try world.verifier(), bundle) == .inconsistentCheckpoints)
    }

    @Test func reorderedVersionsAreRefused() throws {
        let honest = try World.honest()
        var world = honest.world
        let first = honest.first
        var bundle = try world.bundle(first: first)
        bundle.entries.swapAt(0, 1)
        #expect(failure(try world.verifier(), bundle) == .versionGap(expected: 1, found: 2))
    }

    /// The author signed versions 1 and 2, the log put 2 before 1.
    @Test func versionsOutOfLogOrderAreRefused() throws {
        var world = try World()
        try world.enroll(world.alice, "alice")
        let v1 = try world.version(by: world.alice, "alice", append: false)
        let v2 = try VersionEntry.signed(
            lineage: world.lineage, previous: v1, operation: .modify, contentRoot: .zero, size: 2, etag: "2",
            authorUser: "alice", time: world.tick(), device: world.alice)
        world.append(v2)
        world.append(v1)
        world.head = v2
        var bundle = try world.witnessedBundle()
        bundle.entries.reverse()
        #expect(failure(try world.verifier(), bundle) == .outOfLogOrder(version: 2))
    }

    @Test func aRemovedVersionIsRefused() throws {
        let honest = try World.honest()
        var world = honest.world
        let first = honest.first
        var bundle = try world.bundle(first: first)
        bundle.entries.remove(at: 1)
        #expect(failure(try world.verifier(), bundle) == .versionGap(expected: 2, found: 3))
    }

    @Test func aForgedAuthorSignatureIsRefused() throws {
        var world = try World.honest().world
        let mallory = Curve25519.Signing.PrivateKey()
        var forged = try world.version(by: mallory, "alice", append: false)
        forged.authorDevice = DeviceKey(world.alice.publicKey)
        forged.seal(device: mallory)
        world.append(forged)
        #expect(failure(try world.verifier(), try world.witnessedBundle()) == .badAuthorSignature(version: 4))
    }

    @Test func anAuthorWithoutEnrollmentIsRefused() throws {
        var world = try World.honest().world
        try world.version(by: Curve25519.Signing.PrivateKey(), "alice")
        #expect(failure(try world.verifier(), try world.witnessedBundle()) == .authorNotEnrolled(version: 4))
    }

    @Test func aDeviceEnrolledForAnotherUserDoesNotCount() throws {
        var world = try World.honest().world
        try world.version(by: world.bob, "alice")
        #expect(failure(try world.verifier(), try world.witnessedBundle()) == .authorNotEnrolled(version: 4))
    }

    @Test func anAuthorEnrolledAfterTheVersionIsRefused() throws {
        var world = try World.honest().world
        let carol = Curve25519.Signing.PrivateKey()
        try world.version(by: carol, "carol")
        try world.enroll(carol, "carol")
        #expect(failure(try world.verifier(), try world.witnessedBundle()) == .authorEnrolledAfterVersion(version: 4))
    }

    @Test func aRevokedDeviceIsRefusedUntilEnrolledAgain() throws {
        var world = try World.honest().world
        try world.enroll(world.bob, "bob", .revoke)
        try world.version(by: world.bob, "bob")
        #expect(failure(try world.verifier(), try world.witnessedBundle()) == .authorRevoked(version: 4))
        try world.enroll(world.bob, "bob")
        try world.version(by: world.bob, "bob")
        #expect(failure(try world.verifier(), try world.witnessedBundle()) == .authorRevoked(version: 4))
    }

    @Test func aReEnrolledDeviceCountsAgain() throws {
        var world = try World.honest().world
        try world.enroll(world.bob, "bob", .revoke)
        try world.enroll(world.bob, "bob")
        try world.version(by: world.bob, "bob")
        #expect(try world.verifier().verify(try world.witnessedBundle()).versions.count == 4)
    }

    @Test func anEnrollmentNotAttestedByTheLogIsRefused() throws {
        var world = try World.honest().world
        let carol = Curve25519.Signing.PrivateKey()
        let impostor = try NoteSigningKey.generate(name: world.log.origin, type: .ed25519)
        try world.log.append(
            .enrollment(
                .attested(.enroll, device: DeviceKey(carol.publicKey), user: "carol", time: 1, logKey: impostor)))
        try world.version(by: carol, "carol")
        #expect(failure(try world.verifier(), try world.witnessedBundle()) == .badEnrollmentAttestation(leafIndex: 20))
    }

    @Test func aChainThatDoesNotLinkIsRefused() throws {
        var world = try World.honest().world
        let v1 = try #require(world.log.entry(at: 7))
        guard case .version(let first) = v1 else { throw Failure("leaf 7 is not v1") }
        var skipping = try VersionEntry.signed(
            lineage: world.lineage, previous: first, operation: .modify, contentRoot: .zero, size: 4, etag: "4",
            authorUser: "alice", time: world.tick(), device: world.alice)
        skipping.version = 4
        skipping.seal(device: world.alice)
        world.append(skipping)
        #expect(failure(try world.verifier(), try world.witnessedBundle()) == .chainBroken(version: 4))
    }

    @Test func aModifiedEntryIsRefused() throws {
        let honest = try World.honest()
        var world = honest.world
        let first = honest.first
        var bundle = try world.bundle(first: first)
        guard case .version(var entry) = try LogEntry(encoded: bundle.entries[1].entry) else {
            throw Failure("not a version")
        }
        entry.size += 1
        bundle.entries[1].entry = LogEntry.version(entry).encoded
        #expect(failure(try world.verifier(), bundle) == .chainHashMismatch(version: 2))
    }

    @Test func anEntryNotInTheCheckpointIsRefused() throws {
        let honest = try World.honest()
        var world = honest.world
        let first = honest.first
        var bundle = try world.bundle(first: first)
        bundle.entries[2].inclusionProof[0] = .zero
        #expect(failure(try world.verifier(), bundle) == .notIncluded(leafIndex: 12))
    }

    @Test func aCheckpointNotSignedByTheLogIsRefused() throws {
        let honest = try World.honest()
        var world = honest.world
        let first = honest.first
        var bundle = try world.bundle(first: first)
        let impostor = try NoteSigningKey.generate(name: world.log.origin, type: .ed25519)
        let forged = SignedNote.sign(text: bundle.checkpoint.text, key: impostor)
        bundle.checkpoint.signatures.removeAll { $0.names(world.logKey.verifierKey) }
        bundle.checkpoint.signatures.insert(forged, at: 0)
        #expect(failure(try world.verifier(), bundle) == .badLogSignature)
    }

    @Test func anUnderWitnessedCheckpointIsRefused() throws {
        let honest = try World.honest()
        var world = honest.world
        let first = honest.first
        let bundle = try world.bundle(first: first, witnesses: [0])
        #expect(failure(try world.verifier(), bundle) == .quorumNotMet(counted: 1, required: 2, ignored: []))
        #expect(try world.verifier(quorum: 1).verify(bundle).witnesses == ["w1"])
    }

    /// One witness key listed twice in the policy (under two key names) and cosigning under both counts once.
    @Test func aDuplicatedWitnessKeyCountsOnce() throws {
        let honest = try World.honest()
        var world = honest.world
        let first = honest.first
        let alias = try NoteSigningKey(
            name: "w1-alias.example/witness", type: .cosignatureV1, privateKey: world.witnessPrivateKeys[0])
        let policy = try WitnessPolicy(
            log: world.logKey.verifierKey,
            witnesses: [
                .init(name: "w1", key: world.witnessKeys[0].verifierKey),
                .init(name: "w1-again", key: alias.verifierKey),
                .init(name: "w2", key: world.witnessKeys[1].verifierKey),
            ],
            quorum: 2)
        var bundle = try world.bundle(first: first, witnesses: [0])
        let time = try #require(Cosignature.timestamp(of: bundle.checkpoint.signatures[1]))
        bundle.checkpoint.signatures.append(
            Cosignature.sign(checkpointText: bundle.checkpoint.text, time: time, key: alias))
        bundle.checkpoint.signatures.append(bundle.checkpoint.signatures[1])
        let verifier = ProofVerifier(policy: policy, now: world.clock + 60)
        #expect(
            failure(verifier, bundle)
                == .quorumNotMet(
                    counted: 1, required: 2, ignored: ["w1-again: key already counted", "w1: key already counted"]))
    }

    @Test func aStaleCheckpointIsRefused() throws {
        let honest = try World.honest()
        var world = honest.world
        let first = honest.first
        let bundle = try world.bundle(first: first)
        var verifier = try world.verifier(maxAge: 3600)
        #expect(try verifier.verify(bundle).versions.count == 3)
        verifier.now += 2 * 86400
        guard case .staleCheckpoint = failure(verifier, bundle) else {
            throw Failure("a two-day-old checkpoint passed")
        }
    }

    @Test func cosignaturesFromTheFutureOrBeforeTheEntriesDoNotCount() throws {
        let honest = try World.honest()
        var world = honest.world
        let first = honest.first
        var bundle = try world.bundle(first: first, witnesses: [0])
        let text = bundle.checkpoint.text
        let verifier = try world.verifier()
        var future = bundle
        future.checkpoint.signatures.append(
            Cosignature.sign(checkpointText: text, time: UInt64(verifier.now + 86400), key: world.witnessKeys[1]))
        guard case .quorumNotMet(1, 2, let ignored) = failure(verifier, future),
            ignored.first?.contains("future") == true
        else {
            throw Failure("a cosignature from the future counted")
        }
        let headTime = try #require(world.head).time
        bundle.checkpoint.signatures.append(
            Cosignature.sign(
                checkpointText: text, time: UInt64(headTime - 2 * ProofVerifier.defaultClockSkew),
                key: world.witnessKeys[1]))
        guard case .quorumNotMet(1, 2, let ignored) = failure(verifier, bundle),
            ignored.first?.contains("before") == true
        else {
            throw Failure("a cosignature older than the entries counted")
        }
    }

    @Test func aBadCosignatureFromAKnownWitnessRejectsTheNote() throws {
        let honest = try World.honest()
        var world = honest.world
        let first = honest.first
        var bundle = try world.bundle(first: first)
        bundle.checkpoint.signatures[2].signature[20] ^= 1
        #expect(failure(try world.verifier(), bundle) == .badCosignature(name: "w2"))
    }

    @Test func aFirstWitnessedCheckpointWithoutTheHeadIsRefused() throws {
        var world = try World()
        try world.enroll(world.alice, "alice")
        try world.version(by: world.alice, "alice")
        let early = try world.cosign()
        try world.version(by: world.alice, "alice")
        let bundle = try world.bundle(first: early)
        #expect(failure(try world.verifier(), bundle) == .firstWitnessedDoesNotHoldHead)
    }
}
