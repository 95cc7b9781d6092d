import ChunkStore
import Testing

@testable import VersionLog

/// The witness state machine: it cosigns only checkpoints that extend the last one it cosigned (c2sp.org/tlog-witness).
@Suite("Witness")
struct WitnessTests {
    @Test func cosignsAGrowingLogAndRemembersIt() throws {
        var world = try World()
        try world.filler(3)
        var witness = world.witnesses[0]
        let first = world.log.signedCheckpoint()
        let answer = witness.addCheckpoint(oldSize: 0, consistencyProof: [], signedCheckpoint: first, now: 100)
        guard case .cosigned(let lines) = answer else { throw Failure("refused: \(answer)") }
        #expect(Cosignature.verify(lines[0], checkpointText: first.text, key: world.witnessKeys[0].verifierKey) == 100)
        try world.filler(5)
        let second = world.log.signedCheckpoint()
        let request = try #require(world.log.addCheckpointRequest(oldSize: 3, note: second))
        #expect(witness.addCheckpoint(request, now: 200).statusCode == 200)
        #expect(
            witness.states[world.log.origin] == Witness.LogState(size: 8, rootHash: world.log.checkpoint().rootHash))
        // The same checkpoint again is cosigned again (same size, same root).
        #expect(
            witness.addCheckpoint(oldSize: 8, consistencyProof: [], signedCheckpoint: second, now: 300).statusCode
                == 200)
    }

    /// A fork: two different checkpoints of the same size. The witness that cosigned the first refuses the second.
    @Test func forkIsRefused() throws {
        var honest = try World()
        try honest.filler(4)
        var forked = InMemoryLog(key: honest.logKey)
        for index in 0..<3 { forked.append(try #require(honest.log.entry(at: index))) }
        try forked.append(
            .enrollment(
                .attested(.enroll, device: DeviceKey(honest.bob.publicKey), user: "bob", time: 1, logKey: honest.logKey)
            ))
        #expect(forked.size == honest.log.size && forked.checkpoint().rootHash != honest.log.checkpoint().rootHash)

        var witness = honest.witnesses[0]
        let a = honest.log.signedCheckpoint()
        #expect(witness.addCheckpoint(oldSize: 0, consistencyProof: [], signedCheckpoint: a, now: 1).statusCode == 200)
        let b = forked.signedCheckpoint()
        #expect(
            witness.addCheckpoint(oldSize: 4, consistencyProof: [], signedCheckpoint: b, now: 2)
                == .conflict(latestSize: 4))
        // Grown from the fork: no consistency proof from the cosigned tree links to it.
        forked.append(try #require(honest.log.entry(at: 0)))
        let grown = forked.signedCheckpoint()
        let request = try #require(forked.addCheckpointRequest(oldSize: 4, note: grown))
        #expect(witness.addCheckpoint(request, now: 3) == .inconsistent)
        #expect(witness.states[honest.log.origin]?.rootHash == honest.log.checkpoint().rootHash)
    }

    /// A rollback: an older checkpoint presented as current is refused, however the old size is given.
    @Test func rollbackIsRefused() throws {
        var world = try World()
        try world.filler(3)
        let old = world.log.signedCheckpoint()
        try world.filler(3)
        var witness = world.witnesses[0]
        let current = world.log.signedCheckpoint()
        #expect(
            witness.addCheckpoint(oldSize: 0, consistencyProof: [], signedCheckpoint: current, now: 1).statusCode == 200
        )
        #expect(
            witness.addCheckpoint(oldSize: 6, consistencyProof: [], signedCheckpoint: old, now: 2).statusCode == 400)
        #expect(
            witness.addCheckpoint(oldSize: 3, consistencyProof: [], signedCheckpoint: old, now: 2)
                == .conflict(latestSize: 6))
        #expect(
            witness.addCheckpoint(oldSize: 0, consistencyProof: [], signedCheckpoint: old, now: 2)
                == .conflict(latestSize: 6))
        #expect(witness.states[world.log.origin]?.size == 6)
    }

    @Test func aStaleOldSizeGets409WithTheCurrentSize() throws {
        var world = try World()
        try world.filler(3)
        var witness = world.witnesses[0]
        #expect(
            witness.addCheckpoint(
                oldSize: 0, consistencyProof: [], signedCheckpoint: world.log.signedCheckpoint(), now: 1
            ).statusCode == 200)
        try world.filler(2)
        let answer = witness.addCheckpoint(
            oldSize: 0, consistencyProof: [], signedCheckpoint: world.log.signedCheckpoint(), now: 2)
        #expect(answer == .conflict(latestSize: 3))
        #expect(answer.body == "3\n")
    }

    @Test func aWrongLogSignatureIsForbidden() throws {
        var world = try World()
        try world.filler(2)
        let impostor = try NoteSigningKey.generate(name: world.log.origin, type: .ed25519)
        var witness = world.witnesses[0]
        let forged = world.log.checkpoint().signed(by: impostor)
        #expect(witness.addCheckpoint(oldSize: 0, consistencyProof: [], signedCheckpoint: forged, now: 1) == .forbidden)
        var corrupted = world.log.signedCheckpoint()
        corrupted.signatures[0].signature[0] ^= 1
        #expect(
            witness.addCheckpoint(oldSize: 0, consistencyProof: [], signedCheckpoint: corrupted, now: 1) == .forbidden)
        #expect(witness.states.isEmpty)
    }

    @Test func aProofThatDoesNotVerifyIs422() throws {
        var world = try World()
        try world.filler(3)
        var witness = world.witnesses[0]
        #expect(
            witness.addCheckpoint(
                oldSize: 0, consistencyProof: [], signedCheckpoint: world.log.signedCheckpoint(), now: 1
            ).statusCode == 200)
        try world.filler(3)
        let note = world.log.signedCheckpoint()
        var request = try #require(world.log.addCheckpointRequest(oldSize: 3, note: note))
        request.consistencyProof[0] = .zero
        #expect(witness.addCheckpoint(request, now: 2) == .inconsistent)
        #expect(witness.states[world.log.origin]?.size == 3)
    }

    @Test func anUnknownOriginIs404() throws {
        let world = try World()
        let other = try NoteSigningKey.generate(name: "other.example/log", type: .ed25519)
        var witness = world.witnesses[0]
        let note = Checkpoint(origin: "other.example/log", size: 0, rootHash: Merkle.emptyRoot).signed(by: other)
        #expect(
            witness.addCheckpoint(oldSize: 0, consistencyProof: [], signedCheckpoint: note, now: 1) == .unknownOrigin)
    }
}

struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
