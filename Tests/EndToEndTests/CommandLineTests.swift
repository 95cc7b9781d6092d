import Foundation
import Testing

/// The built `harp-cli` binary: exit codes and output of commands that need no server.
@Suite("Command line")
struct CommandLineTests {
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    func run(_ arguments: [String]) throws -> Run {
        let process = Process()
        process.executableURL = HarpBinary.url
        process.arguments = arguments
        // The user's own harp settings must not leak into these tests.
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HARP_") }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self))
    }

    @Test func usageErrorsExitWithTwo() throws {
        let unknownFlag = try run(["index", "--no-such-flag", "x"])
        #expect(unknownFlag.status == 2)
        #expect(unknownFlag.stderr.contains("no-such-flag"))
        #expect(try run(["no-such-command"]).status == 2)
    }

    @Test(
        arguments: [
            ["login"], ["logout"], ["whoami"], ["ls"], ["index"], ["get"], ["put"], ["seed"], ["status"], ["demo"],
            ["signal", "serve"], ["signal", "keys"], ["signal", "enroll"], ["verify-proof"], ["proof"],
            ["devcloud", "serve"],
        ])
    func everyCommandHasHelpWithAnExample(_ command: [String]) throws {
        let help = try run(command + ["--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("Example"), "\(command.joined(separator: " ")) --help has no example")
        #expect(help.stdout.contains("harp-cli \(command.joined(separator: " "))"))
        #expect(try run(["--help"]).stdout.contains(command[0]))
    }

    @Test(arguments: ["bash", "zsh", "fish"])
    func completionScriptsAreGenerated(_ shell: String) throws {
        let script = try run(["--generate-completion-script", shell])
        #expect(script.status == 0)
        #expect(script.stdout.contains("harp-cli"))
        #expect(script.stdout.contains("seed"))
    }

    @Test func indexJSONAndMissingFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("harp-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/a.bin"
        try Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) }).write(
            to: URL(fileURLWithPath: file))
        let first = try run(["index", file, "--json", "--store", dir + "/s.sqlite"])
        #expect(first.status == 0)
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any])
        #expect(object["size"] as? Int == 3_000_000)
        #expect((object["root"] as? String)?.count == 64)
        #expect(object["reused"] as? Bool == false)
        let second = try run(["index", file, "--json", "--store", dir + "/s.sqlite"])
        #expect(second.stdout.contains("\"reused\":true"))
        #expect(second.stdout.contains(object["root"] as? String ?? "?"))
        let missing = try run(["index", dir + "/nope", "--store", dir + "/s.sqlite"])
        #expect(missing.status == 4)
        #expect(missing.stderr.contains("no such file"))
    }

    @Test func whoamiCreatesOneDeviceKeyWithPrivatePermissions() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("harp-cfg-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try run(["whoami", "--config-dir", dir])
        #expect(first.status == 3)  // not logged in
        #expect(first.stderr.contains("Not logged in"))
        let line = try #require(first.stdout.split(separator: "\n").first { $0.hasPrefix("device:") })
        let attributes = try FileManager.default.attributesOfItem(atPath: dir + "/device.key")
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let second = try run(["whoami", "--config-dir", dir])
        #expect(second.stdout.split(separator: "\n").first { $0.hasPrefix("device:") } == line)
    }
}
