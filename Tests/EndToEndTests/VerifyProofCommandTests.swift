import ChunkStore
import Crypto
import Foundation
import Testing
import VersionLog

/// `harp-cli verify-proof`, run as the built binary on bundles made with the library.
@Suite("harp-cli verify-proof")
struct VerifyProofCommandTests {
    /// A log with two witnesses, one lineage of three versions, and its bundle and policy files.
    struct Fixture {
        let directory: String
        let bundlePath: String
        let policyPath: String
        let bundle: ProofBundle

        init(quorum: Int = 2) throws {
            directory =
                FileManager.default.temporaryDirectory.appendingPathComponent("harp-vp-\(UUID().uuidString)")
                .path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let now = Int64(Date().timeIntervalSince1970)
            let logKey = try NoteSigningKey.generate(name: "signal.test", type: .ed25519)
            let witnessKeys = try (0..<2).map {
                try NoteSigningKey.generate(name: "w\($0).test/witness", type: .cosignatureV1)
            }
            var log = InMemoryLog(key: logKey)
            var witnesses = witnessKeys.map { Witness(key: $0, logKeys: [logKey.verifierKey]) }
            let device = Curve25519.Signing.PrivateKey()
            log.append(
                .enrollment(
                    try EnrollmentEntry.attested(
                        .enroll, device: DeviceKey(device.publicKey), user: "alice", time: now - 100, logKey: logKey)))
            let lineage = VersionEntry.lineage(instance: "https://cloud.test", fileID: "9")
            var previous: VersionEntry?
            for size in 1...3 {
                let entry = try VersionEntry.signed(
                    lineage: lineage, previous: previous, operation: previous == nil ? .create : .modify,
                    contentRoot: Hash256.sha256([UInt8(size)]), size: UInt64(size * 1000), etag: "e\(size)",
                    authorUser: "alice", time: now - 90 + Int64(size), device: device)
                log.append(.version(entry))
                previous = entry
            }
            var note = log.signedCheckpoint()
            for index in witnesses.indices {
                let request = try #require(log.addCheckpointRequest(oldSize: 0, note: note))
                guard case .cosigned(let lines) = witnesses[index].addCheckpoint(request, now: UInt64(now - 50)) else {
                    throw TestbedError("a witness refused")
                }
                note = note.adding(lines)
            }
            bundle = try #require(log.proofBundle(lineage: lineage, checkpoint: note, firstWitnessed: note))
            bundlePath = directory + "/bundle.json"
            policyPath = directory + "/policy"
            try Data(bundle.json()).write(to: URL(fileURLWithPath: bundlePath))
            let policy =
                "# test policy\nlog \(logKey.verifierKey.vkey)\n"
                + witnessKeys.enumerated().map { "witness w\($0.offset) \($0.element.verifierKey.vkey)\n" }.joined()
                + "quorum \(quorum)\n"
            try Data(policy.utf8).write(to: URL(fileURLWithPath: policyPath))
        }
    }

    @Test func aValidBundlePrintsTheHistoryAndWhatItCannotShow() throws {
        let fixture = try Fixture()
        defer { try? FileManager.default.removeItem(atPath: fixture.directory) }
        let run = try CommandLineTests().run(["verify-proof", fixture.bundlePath, "--policy", fixture.policyPath])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.hasPrefix("VALID"))
        #expect(run.stdout.contains("3  modify  alice (device "))
        #expect(run.stdout.contains("the head was witnessed by"))
        #expect(run.stdout.contains(VerifiedHistory.limitation))
        let json = try CommandLineTests().run([
            "verify-proof", fixture.bundlePath, "--policy", fixture.policyPath, "--json",
        ])
        #expect(json.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["valid"] as? Bool == true)
        #expect((object["versions"] as? [[String: Any]])?.map { $0["version"] as? Int } == [1, 2, 3])
        #expect(object["limitation"] as? String == VerifiedHistory.limitation)
    }

    @Test func aModifiedBundleExitsSixWithTheReason() throws {
        let fixture = try Fixture()
        defer { try? FileManager.default.removeItem(atPath: fixture.directory) }
        var bundle = fixture.bundle
        bundle.entries.remove(at: 1)  // a removed version
        try Data(bundle.json()).write(to: URL(fileURLWithPath: fixture.bundlePath))
        let run = try CommandLineTests().run(["verify-proof", fixture.bundlePath, "--policy", fixture.policyPath])
        #expect(run.status == 6)
        #expect(run.stderr.contains("INVALID"))
        #expect(run.stdout.isEmpty)
        let json = try CommandLineTests().run([
            "verify-proof", fixture.bundlePath, "--policy", fixture.policyPath, "--json",
        ])
        #expect(json.status == 6 && json.stdout.contains(#""valid":false"#))
    }

    @Test func anUnderWitnessedCheckpointIsInvalid() throws {
        // The bundle's checkpoint has two cosignatures; a policy that lists only one of them cannot reach quorum 2.
        let fixture = try Fixture()
        defer { try? FileManager.default.removeItem(atPath: fixture.directory) }
        let policy = try String(contentsOfFile: fixture.policyPath, encoding: .utf8)
        let lines = policy.split(separator: "\n").filter { !$0.hasPrefix("witness w1") }
        try Data((lines.joined(separator: "\n").replacingOccurrences(of: "quorum 2", with: "quorum 1") + "\n").utf8)
            .write(to: URL(fileURLWithPath: fixture.policyPath))
        #expect(
            try CommandLineTests().run(["verify-proof", fixture.bundlePath, "--policy", fixture.policyPath]).status == 0
        )
        var bundle = fixture.bundle
        bundle.checkpoint.signatures.removeAll { $0.name == "w0.test/witness" }
        try Data(bundle.json()).write(to: URL(fileURLWithPath: fixture.bundlePath))
        let run = try CommandLineTests().run(["verify-proof", fixture.bundlePath, "--policy", fixture.policyPath])
        #expect(run.status == 6, "\(run.stdout)")
    }

    @Test func aMalformedBundleOrPolicyExitsTwo() throws {
        let fixture = try Fixture()
        defer { try? FileManager.default.removeItem(atPath: fixture.directory) }
        let garbage = fixture.directory + "/garbage"
        try Data("{\"format\": 1".utf8).write(to: URL(fileURLWithPath: garbage))
        let badBundle = try CommandLineTests().run(["verify-proof", garbage, "--policy", fixture.policyPath])
        #expect(badBundle.status == 2 && badBundle.stderr.contains("malformed"))
        let badPolicy = try CommandLineTests().run(["verify-proof", fixture.bundlePath, "--policy", garbage])
        #expect(badPolicy.status == 2 && badPolicy.stderr.contains("policy line 1"))
        let missing = try CommandLineTests().run(["verify-proof", fixture.directory + "/none", "--policy", garbage])
        #expect(missing.status == 2)
    }
}
