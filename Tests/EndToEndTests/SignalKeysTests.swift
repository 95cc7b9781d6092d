import Foundation
import Testing
import VersionLog

/// `harp-cli signal keys`, run as the built binary.
@Suite("harp-cli signal keys")
struct SignalKeysTests {
    @Test func createsPrivateKeysOnceAndPrintsTheirVerifierKeys() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("harp-keys-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try CommandLineTests().run(["signal", "keys", "--data", dir, "--name", "signal.test"])
        #expect(first.status == 0, "\(first.stderr)")
        let lines = first.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        try #require(lines.count == 3 && lines[2].isEmpty, "two lines, got \(first.stdout)")
        #expect(lines[0].hasPrefix("log signal.test+"))
        #expect(lines[1].hasPrefix("witness signal.test/witness+"))
        let log = try NoteVerifierKey(vkey: String(lines[0].dropFirst("log ".count)))
        let witness = try NoteVerifierKey(vkey: String(lines[1].dropFirst("witness ".count)))
        #expect(log.type == .ed25519)
        #expect(witness.type == .cosignatureV1)
        #expect(log.publicKey != witness.publicKey)
        for file in ["log.key", "witness.key"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: dir + "/" + file)
            #expect((attributes[.posixPermissions] as? Int) == 0o600, "\(file) is not 0600")
        }
        // A second run reads the same keys; --name only names new keys.
        let second = try CommandLineTests().run(["signal", "keys", "--data", dir, "--name", "other"])
        #expect(second.status == 0)
        #expect(second.stdout == first.stdout)
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["log.key", "witness.key"])
    }

    @Test func refusesAKeyFileReadableByOthers() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("harp-keys-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try CommandLineTests().run(["signal", "keys", "--data", dir]).status == 0)
        chmod(dir + "/log.key", 0o644)
        let run = try CommandLineTests().run(["signal", "keys", "--data", dir])
        #expect(run.status == 1)
        #expect(run.stderr.contains("readable by others"))
        #expect(run.stdout.isEmpty)
    }
}
