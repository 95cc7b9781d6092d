import ChunkStore
import Foundation
import Testing

@testable import VersionLog

/// Signed notes, keys, checkpoints and cosignatures against the C2SP examples in ../shared/vectors.
@Suite("C2SP signed notes, checkpoints and cosignatures")
struct NoteTests {
    let examples: [String: SharedVectors.NoteExample]

    init() throws {
        examples = Dictionary(uniqueKeysWithValues: try SharedVectors.noteExamples().map { ($0.id, $0) })
    }

    @Test func theVerifiableExampleVerifiesAndATamperedOneDoesNot() throws {
        let example = try #require(examples["signed-note-vkey-example"])
        let key = try NoteVerifierKey(vkey: try #require(example.fields["vkey"]))
        #expect(key.keyID == 0x530d_903a)
        #expect(key.vkey == example.fields["vkey"])
        let note = try SignedNote(parsing: example.body)
        #expect(note.text == "This is an example message.\n")
        #expect(try note.verifiedSigners(among: [key]) == [key])
        #expect(note.formatted == example.body)

        let tampered = try SignedNote(
            parsing: example.body.replacingOccurrences(of: "example message", with: "example massage"))
        #expect(throws: NoteError.self) { try tampered.verifiedSigners(among: [key]) }
    }

    @Test func unknownSignaturesAreIgnored() throws {
        let example = try #require(examples["signed-note-vkey-example"])
        let known = try NoteVerifierKey(vkey: try #require(example.fields["vkey"]))
        let other = try NoteSigningKey.generate(name: "example.com/foo", type: .ed25519)
        let note = try SignedNote(parsing: example.body)
        // Same name, another key ID: ignored, whatever its signature.
        #expect(try note.verifiedSigners(among: [other.verifierKey]).isEmpty)
        let extra = note.adding([NoteSignature(name: "unknown.example", keyID: 7, signature: [1, 2, 3])])
        #expect(try extra.verifiedSigners(among: [known]) == [known])
    }

    @Test func theOtherExamplesParse() throws {
        let poem = try SignedNote(parsing: try #require(examples["signed-note-intro"]).body)
        #expect(poem.signatures.map(\.keyID) == [0x367b_a04b])
        #expect(poem.text.contains("\n\ned è subito sera.\n"))

        let intro = try SignedNote(parsing: try #require(examples["tlog-checkpoint-intro"]).body)
        let checkpoint = try Checkpoint(text: intro.text)
        #expect(checkpoint.origin == "example.com/behind-the-sofa")
        #expect(checkpoint.size == 20_852_163)
        #expect(Base64.encode(checkpoint.rootHash.bytes) == "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
        #expect(intro.signatures.map(\.keyID) == [0x033d_e0ae])
        #expect(checkpoint.text == intro.text)

        let cosigned = try SignedNote(parsing: try #require(examples["tlog-cosignature-intro"]).body)
        let cosignature = try #require(cosigned.signatures.last)
        #expect(cosignature.name == "witness.example.com/w1")
        #expect(cosignature.keyID == 0x8d66_cf3f)
        #expect(cosignature.signature.count == 72)
        #expect(Cosignature.timestamp(of: cosignature) == 1_679_315_147)
        #expect(cosigned.formatted == examples["tlog-cosignature-intro"]?.body)
    }

    @Test func theCosignedMessageIsTheSpecsExample() throws {
        let message = try #require(examples["tlog-cosignature-signed-message"]).body
        let checkpoint = try SignedNote(parsing: try #require(examples["tlog-checkpoint-intro"]).body)
        #expect(Cosignature.message(checkpointText: checkpoint.text, time: 1_679_315_147) == Array(message.utf8))
    }

    @Test func cosignaturesRoundTripAndUseTypeByte4() throws {
        let witness = try NoteSigningKey.generate(name: "w.example/1", type: .cosignatureV1)
        let sameKeyAsLog = try NoteVerifierKey(
            name: "w.example/1", type: .ed25519, publicKey: witness.verifierKey.publicKey)
        #expect(witness.verifierKey.keyID != sameKeyAsLog.keyID)
        let text = Checkpoint(origin: "log.example", size: 3, rootHash: .zero).text
        let line = Cosignature.sign(checkpointText: text, time: 1234, key: witness)
        #expect(Cosignature.verify(line, checkpointText: text, key: witness.verifierKey) == 1234)
        #expect(Cosignature.verify(line, checkpointText: text + "x\n", key: witness.verifierKey) == nil)
        let parsed = try SignedNote(parsing: SignedNote(text: text, signatures: [line]).formatted)
        #expect(parsed.signatures == [line])
    }

    @Test func keysRoundTripInTheirTextForms() throws {
        let key = try NoteSigningKey.generate(name: "signal.example/log", type: .ed25519)
        #expect(try NoteVerifierKey(vkey: key.verifierKey.vkey) == key.verifierKey)
        let again = try NoteSigningKey(skey: key.skey)
        #expect(again.verifierKey == key.verifierKey)
        #expect(key.skey.hasPrefix("PRIVATE+KEY+signal.example/log+"))
        var wrongID = key.verifierKey.vkey
        wrongID.replaceSubrange(wrongID.range(of: "+")!, with: "+0")
        #expect(throws: NoteError.self) { try NoteVerifierKey(vkey: wrongID) }
        #expect(throws: NoteError.self) {
            try NoteVerifierKey(name: "has space", type: .ed25519, publicKey: [UInt8](repeating: 0, count: 32))
        }
        #expect(throws: NoteError.self) {
            try NoteVerifierKey(name: "has+plus", type: .ed25519, publicKey: [UInt8](repeating: 0, count: 32))
        }
    }

    @Test func malformedNotesAreRefused() {
        let bad = [
            "no blank line\n\u{2014} k AAAAAAA=\n",
            "text\n\n",
            "text\n\nnot a signature\n",
            "text\n\n\u{2014} k AAAAAAA=",
            "te\u{7}xt\n\n\u{2014} k AAAAAAA=\n",
            "text\n\n\u{2014} k AAAA\n",
        ]
        for note in bad { #expect(throws: NoteError.self, "\(note)") { try SignedNote(parsing: note) } }
        #expect(throws: NoteError.self) { try Checkpoint(text: "origin\n007\nAAAA\n") }
        #expect(throws: NoteError.self) { try Checkpoint(text: "origin\n7\n") }
    }

    @Test func notesOverTheLimitsAreRefusedBeforeParsing() {
        let long = String(repeating: "a", count: SignedNote.maximumSize) + "\n\n\u{2014} k AAAAAAA=\n"
        #expect(throws: NoteError.tooLarge(size: long.utf8.count, limit: SignedNote.maximumSize)) {
            try SignedNote(parsing: long)
        }
        let many = "t\n\n" + String(repeating: "\u{2014} k AAAAAAA=\n", count: SignedNote.maximumSignatures + 1)
        #expect(
            throws: NoteError.tooManyLines(count: SignedNote.maximumSignatures + 1, limit: SignedNote.maximumSignatures)
        ) {
            try SignedNote(parsing: many)
        }
    }
}
