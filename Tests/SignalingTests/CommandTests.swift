import Foundation
import Synchronization
import Testing

@testable import Signaling

/// The built `harp-cli`, next to the test bundle (`swift build` builds it with the tests).
private let harpCLI: String = {
    let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    return directory.appendingPathComponent("harp-cli").path
}()

@Suite("harp-cli signal serve")
struct CommandTests {
    @Test(
        "prints its URL and fingerprint first, serves, and exits 0 on SIGTERM",
        .enabled(if: FileManager.default.isExecutableFile(atPath: harpCLI), "harp-cli is not built")
    )
    func serveAndStop() async throws {
        let data = try temporaryDirectory()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: harpCLI)
        process.arguments = ["signal", "serve", "--listen", "127.0.0.1:0", "--data", data, "--tls-self-signed"]
        var environment = ProcessInfo.processInfo.environment
        environment["HARP_SIGNAL_JOIN_KEY"] = "team secret"
        process.environment = environment
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        let exited = OneShot<Int32>()
        process.terminationHandler = { exited.fulfil($0.terminationStatus) }
        let firstLines = OneShot<[String]>()
        let received = Mutex("")
        output.fileHandleForReading.readabilityHandler = { handle in
            let chunk = String(decoding: handle.availableData, as: UTF8.self)
            let lines = received.withLock { text -> [String] in
                text += chunk
                return text.split(separator: "\n").map(String.init)
            }
            if lines.count >= 2 { firstLines.fulfil(Array(lines.prefix(2))) }
        }
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        let lines = try await withTimeout("server's first lines") { try await firstLines.value() }
        output.fileHandleForReading.readabilityHandler = nil
        try #require(lines.count == 2)
        #expect(lines[0].hasPrefix("wss://127.0.0.1:") && lines[0].hasSuffix("/v1/ws"))
        let fingerprint = try #require(lines[1].split(separator: " ").last.map(String.init))
        #expect(fingerprint.count == 64)

        try await withPeers(
            1, url: lines[0],
            configure: {
                $0.pinnedCertificateSHA256 = fingerprint
                $0.joinKey = Array("team secret".utf8)
            }
        ) { peers in
            let swarm = Ed25519Signer()
            let found = try await withTimeout("join") { try await peers[0].client.join(swarm: swarm, addresses: []) }
            #expect(found.isEmpty)
        }

        process.terminate()  // SIGTERM
        let status = try await withTimeout("exit after SIGTERM") { try await exited.value() }
        #expect(status == 0)
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(!log.contains("team secret"))
        #expect(log.contains("join.key=on"))
    }
}
