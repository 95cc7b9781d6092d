import ChunkStore
import Crypto
import Foundation
import Testing

@testable import VersionLog

/// Round trips of every encoding, and bounded decoders that refuse oversize input.
@Suite("Encodings")
struct EncodingTests {
    @Test func logEntriesRoundTrip() throws {
        var world = try World()
        try world.enroll(world.alice, "alice")
        let v1 = try world.version(by: world.alice, "alice")
        let v2 = try world.version(by: world.alice, "alice", .rename)
        let revoke = try EnrollmentEntry.attested(
            .revoke, device: DeviceKey(world.alice.publicKey), user: "alice", time: 5, logKey: world.logKey)
        for entry in [LogEntry.version(v1), .version(v2), .enrollment(revoke)] {
            let bytes = entry.encoded
            #expect(try LogEntry(encoded: bytes) == entry)
            #expect(entry.leafHash == Merkle.leafHash(bytes))
            #expect(bytes.count <= LogEntry.maximumEncodedSize)
        }
        #expect(v1.version == 1 && v1.previousHash == .zero)
        #expect(v2.previousHash == v1.chainHash && v2.hasValidSignature)
        #expect(revoke.isAttested(by: world.logKey.verifierKey))
        #expect(v1.contentCommitment == VersionEntry.commitment(contentRoot: Hash256.sha256(Array("content 1".utf8))))
        #expect(v1.contentCommitment != Hash256.sha256(Array("content 1".utf8)))
    }

    @Test func theChainHashIsSHA3OfMetaAndThePreviousHash() throws {
        let world = try World()
        let v1 = try VersionEntry.signed(
            lineage: world.lineage, previous: nil, operation: .create, contentRoot: .zero, size: 1, etag: "e",
            authorUser: "alice", time: 1, device: world.alice)
        let expected = SHA3_256.hash(data: v1.metaBytes + [UInt8](repeating: 0, count: 32))
        #expect(v1.chainHash.bytes == Array(expected))
    }

    @Test func decodersRefuseBadAndOversizeInput() throws {
        var world = try World()
        let entry = LogEntry.version(try world.version(by: world.alice, "alice"))
        let bytes = entry.encoded
        #expect(throws: LogEncodingError.entryTooLarge(size: 1025, limit: 1024)) {
            try LogEntry(encoded: [UInt8](repeating: 1, count: 1025))
        }
        #expect(throws: LogEncodingError.trailingBytes(count: 1)) { try LogEntry(encoded: bytes + [0]) }
        #expect(throws: LogEncodingError.unknownFormatVersion(2)) { try LogEntry(encoded: [2] + bytes.dropFirst()) }
        #expect(throws: LogEncodingError.unknownKind(9)) { try LogEntry(encoded: [1, 9] + bytes.dropFirst(2)) }
        for cut in [0, 1, 40, bytes.count - 1] {
            #expect(throws: LogEncodingError.self) { try LogEntry(encoded: Array(bytes.prefix(cut))) }
        }
        // The etag's length prefix (after 2 + 32 + 8 + 1 + 32 + 8 bytes) says 257: refused before reading.
        var long = bytes
        long[83] = 0x01
        long[84] = 0x01
        #expect(throws: LogEncodingError.fieldTooLong(field: "etag", length: 257, limit: 256)) {
            try LogEntry(encoded: long)
        }
    }

    @Test func entriesThatCannotBeEncodedAreRefusedWhenSigned() throws {
        let world = try World()
        let long = String(repeating: "e", count: VersionEntry.maximumTextLength + 1)
        #expect(throws: LogEncodingError.fieldTooLong(field: "etag", length: 257, limit: 256)) {
            try VersionEntry.signed(
                lineage: world.lineage, previous: nil, operation: .create, contentRoot: .zero, size: 1, etag: long,
                authorUser: "alice", time: 1, device: world.alice)
        }
        #expect(throws: LogEncodingError.invalidText(field: "authorUser")) {
            try VersionEntry.signed(
                lineage: world.lineage, previous: nil, operation: .create, contentRoot: .zero, size: 1, etag: "e",
                authorUser: "al\nice", time: 1, device: world.alice)
        }
        #expect(throws: LogEncodingError.outOfRange(field: "time")) {
            try EnrollmentEntry.attested(
                .enroll, device: DeviceKey(world.alice.publicKey), user: "alice", time: -1, logKey: world.logKey)
        }
    }

    @Test func witnessRequestsAndAnswersRoundTrip() throws {
        var world = try World()
        try world.filler(9)
        let note = world.log.signedCheckpoint()
        let request = try #require(world.log.addCheckpointRequest(oldSize: 4, note: note))
        #expect(request.consistencyProof.count > 0)
        #expect(try AddCheckpointRequest(body: request.body) == request)
        #expect(request.body.hasPrefix("old 4\n"))

        let empty = AddCheckpointRequest(oldSize: 0, consistencyProof: [], checkpoint: note)
        #expect(empty.body.hasPrefix("old 0\n\n"))
        #expect(try AddCheckpointRequest(body: empty.body) == empty)

        let lines = [Cosignature.sign(checkpointText: note.text, time: 99, key: world.witnessKeys[0])]
        for answer in [
            AddCheckpointResponse.cosigned(lines), .conflict(latestSize: 17), .forbidden, .unknownOrigin, .inconsistent,
        ] {
            #expect(AddCheckpointResponse(statusCode: answer.statusCode, body: answer.body) == answer)
        }
        #expect(AddCheckpointResponse.conflict(latestSize: 17).body == "17\n")
        #expect(AddCheckpointResponse.conflict(latestSize: 17).contentType == "text/x.tlog.size")
    }

    @Test func witnessRequestsOverTheLimitsAreRefused() throws {
        var world = try World()
        try world.filler(2)
        let note = world.log.signedCheckpoint()
        let sixtyFour = AddCheckpointRequest(
            oldSize: 1, consistencyProof: Array(repeating: .zero, count: 64), checkpoint: note)
        #expect(throws: NoteError.tooManyLines(count: 64, limit: 63)) { try AddCheckpointRequest(body: sixtyFour.body) }
        let huge = "old 1\n" + String(repeating: "A", count: AddCheckpointRequest.maximumBodySize)
        #expect(throws: NoteError.self) { try AddCheckpointRequest(body: huge) }
        #expect(throws: NoteError.self) { try AddCheckpointRequest(body: "old 01\n\n" + note.formatted) }
    }

    @Test func proofBundlesRoundTripThroughJSON() throws {
        let honest = try World.honest()
        var world = honest.world
        let first = honest.first
        let bundle = try world.bundle(first: first)
        let json = bundle.json()
        #expect(try ProofBundle(json: json) == bundle)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json)) as? [String: Any])
        #expect(Set(object.keys) == ["format", "checkpoint", "entries", "enrollments", "firstWitnessed"])
    }

    @Test func proofBundleDecodingIsBounded() throws {
        let honest = try World.honest()
        var world = honest.world
        let first = honest.first
        let json = try world.bundle(first: first).json()
        var limits = ProofBundle.Limits()
        limits.maximumBytes = json.count - 1
        #expect(throws: ProofBundleError.tooLarge(size: json.count, limit: json.count - 1)) {
            try ProofBundle(json: json, limits: limits)
        }
        limits = ProofBundle.Limits()
        limits.maximumEntries = 2
        #expect(throws: ProofBundleError.self) { try ProofBundle(json: json, limits: limits) }
        limits = ProofBundle.Limits()
        limits.maximumProofLength = 1
        #expect(throws: ProofBundleError.self) { try ProofBundle(json: json, limits: limits) }
        #expect(throws: ProofBundleError.self) { try ProofBundle(json: Array("{\"format\": 1}".utf8)) }
    }

    @Test func policiesRoundTrip() throws {
        let world = try World()
        let policy = try world.policy()
        #expect(try WitnessPolicy(parsing: policy.formatted) == policy)
    }
}
