import Foundation
import Synchronization
import Testing

@testable import SignalingClient
@testable import SignalingProtocol
@testable import SignalingServer

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
        let keyFile = data + "-join-key"
        #expect(FileManager.default.createFile(atPath: keyFile, contents: Data("team secret\n".utf8)))
        process.arguments = [
            "signal", "serve", "--listen", "127.0.0.1:0", "--data", data, "--tls-self-signed", "--join-key-file",
            keyFile,
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["HARP_SIGNAL_JOIN_KEY"] = "not the key: the file wins"
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

/// Runs `harp-cli` to completion (it must stop by itself) and returns its exit status and standard error.
private func runCLI(_ arguments: [String], environment extra: [String: String] = [:]) async throws -> (Int32, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: harpCLI)
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    environment["HARP_SIGNAL_JOIN_KEY"] = nil
    for (key, value) in extra { environment[key] = value }
    process.environment = environment
    let errors = Pipe()
    process.standardError = errors
    process.standardOutput = FileHandle.nullDevice
    let exited = OneShot<Int32>()
    process.terminationHandler = { exited.fulfil($0.terminationStatus) }
    try process.run()
    defer { if process.isRunning { process.terminate() } }
    let status = try await withTimeout("harp-cli \(arguments.joined(separator: " ")) exits") {
        try await exited.value()
    }
    return (status, String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
}

@Suite("harp-cli signal serve: exposure")
struct ExposureTests {
    @Test(
        "refuses a non-loopback address without a join key unless --open says so, and says why",
        .enabled(if: FileManager.default.isExecutableFile(atPath: harpCLI), "harp-cli is not built")
    )
    func refusesOpenServer() async throws {
        // It refuses before binding: nothing listens on 0.0.0.0.
        let (status, errors) = try await runCLI([
            "signal", "serve", "--listen", "0.0.0.0:0", "--data", try temporaryDirectory(),
        ])
        #expect(status == 2)
        #expect(errors.contains("without a join key") && errors.contains("--open"), "\(errors)")
    }

    @Test(
        "the join key is not a flag (flags show in ps)",
        .enabled(if: FileManager.default.isExecutableFile(atPath: harpCLI), "harp-cli is not built")
    )
    func noJoinKeyFlag() async throws {
        let (status, errors) = try await runCLI([
            "signal", "serve", "--listen", "127.0.0.1:0", "--data", try temporaryDirectory(), "--join-key", "secret",
        ])
        #expect(status != 0)
        #expect(errors.contains("--join-key"), "\(errors)")
    }

    @Test(
        "an unreadable --join-key-file stops the server with a clear message",
        .enabled(if: FileManager.default.isExecutableFile(atPath: harpCLI), "harp-cli is not built")
    )
    func unreadableJoinKeyFile() async throws {
        let directory = try temporaryDirectory()
        let (status, errors) = try await runCLI([
            "signal", "serve", "--listen", "0.0.0.0:0", "--data", directory, "--join-key-file", directory + "/missing",
        ])
        #expect(status == 2)
        #expect(errors.contains("cannot read --join-key-file"), "\(errors)")
    }
}
