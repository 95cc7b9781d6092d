import Foundation
import Testing
import VersionLog

@testable import SignalingServer

/// `--federation FILE` parsing, and the log lock that keeps `signal enroll` off a running server's log.
@Suite("Federation file")
struct FederationTests {
    let log = try! NoteSigningKey.generate(name: "b.test", type: .ed25519).verifierKey
    let witness = try! NoteSigningKey.generate(name: "b.test/witness", type: .cosignatureV1).verifierKey

    @Test func parsesServersCommentsAndBlankLines() throws {
        let text = "# the federation\n\nserver http://127.0.0.1:7447/ \(log.vkey) \(witness.vkey)  # b\n"
        let federation = try Federation(parsing: text)
        #expect(federation.servers == [.init(url: "http://127.0.0.1:7447", logKey: log, witnessKey: witness)])
    }

    @Test func errorsNameTheLine() {
        let cases: [(String, String)] = [
            ("\nserve http://x \(log.vkey) \(witness.vkey)", "line 2: unknown keyword"),
            ("server http://x \(log.vkey)", "line 1: expected: server URL LOG_VKEY WITNESS_VKEY"),
            ("server ftp://x \(log.vkey) \(witness.vkey)", "line 1: the URL must start with http"),
            ("server http://x \(witness.vkey) \(witness.vkey)", "line 1: the log key must be an Ed25519"),
            ("server http://x \(log.vkey) \(log.vkey)", "line 1: the witness key must be a cosignature/v1"),
            ("server http://x \(log.vkey) nonsense", "line 1: bad key"),
            (
                "server http://x \(log.vkey) \(witness.vkey)\nserver http://y \(log.vkey) \(witness.vkey)",
                "line 2: this witness key is already listed"
            ),
        ]
        for (text, message) in cases {
            #expect(throws: Federation.ParseError.self) { try Federation(parsing: text) }
            do {
                _ = try Federation(parsing: text)
            } catch {
                #expect("\(error)".contains(message), "\(error) does not say \(message)")
            }
        }
        #expect(throws: Federation.ParseError.self) {
            try Federation(parsing: String(repeating: "#", count: Federation.maximumSize + 1))
        }
    }

    @Test func enrollmentIsRefusedWhileAServerRunsOnTheDirectory() async throws {
        let directory = try temporaryDirectory()
        let device = try #require(DeviceKey(bytes: [UInt8](repeating: 7, count: 32)))
        _ = try await withServer(makeServerConfiguration(dataDirectory: directory)) { _, _, _ in
            await #expect(throws: SignalServerError.self) {
                try await LogAdministration.enroll(directory: directory, user: "alice", device: device, now: 1)
            }
        }
        #expect(try await LogAdministration.enroll(directory: directory, user: "alice", device: device, now: 1) == 0)
    }
}
