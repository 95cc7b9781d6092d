import Foundation
import Testing

/// config.toml and the precedence flag > environment > file, through the real binary.
@Suite("Configuration file (real processes)", .serialized)
struct ConfigTests {
    func writeConfig(_ bed: Testbed, peer: String, _ text: String) throws {
        let directory = bed.home(peer) + "/config"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try text.write(toFile: directory + "/config.toml", atomically: true, encoding: .utf8)
    }

    /// Runs `harp-cli` as `peer` with only the environment given (no HARP_SERVER/HARP_USER unless listed).
    func run(
        _ bed: Testbed, peer: String, _ arguments: [String], environment: [String: String]
    ) async throws
        -> LaunchedProcess
    {
        var env = Testbed.baseEnvironment
        env["HARP_CONFIG_DIR"] = bed.home(peer) + "/config"
        env["HARP_STORE"] = bed.home(peer) + "/store.sqlite"
        for (key, value) in environment { env[key] = value }
        let process = try LaunchedProcess(
            name: peer + "-" + (arguments.first ?? "run"), arguments: arguments, environment: env,
            directory: bed.home(peer))
        await process.wait()
        return process
    }

    @Test func theFileFillsInWhatFlagsAndEnvironmentDoNotSay() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        _ = bed.environment(peer: "cfg")
        try writeConfig(
            bed, peer: "cfg",
            """
            # defaults for this machine
            server = "\(bed.cloudURL)"
            user = "alice"   # overridden by HARP_USER below in one run

            [limits]
            parallel_files = 2
            upload = "40M"
            """)
        // The file gives server and user; the environment only the password.
        let fromFile = try await run(
            bed, peer: "cfg", ["whoami", "--json"], environment: ["HARP_APP_PASSWORD": "alice-pw"])
        #expect(fromFile.process.terminationStatus == 0, "\(fromFile.stderr)")
        #expect(fromFile.jsonLines.first?["user"] as? String == "alice")
        // The environment beats the file.
        let fromEnvironment = try await run(
            bed, peer: "cfg", ["whoami", "--json"], environment: ["HARP_USER": "bob", "HARP_APP_PASSWORD": "bob-pw"])
        #expect(fromEnvironment.jsonLines.first?["user"] as? String == "bob", "\(fromEnvironment.stderr)")
        // A flag beats both: a server nobody listens on is a network failure (7).
        let down = try RefusingPort()
        let fromFlag = try await run(
            bed, peer: "cfg", ["whoami", "--server", "http://127.0.0.1:\(down.port)"],
            environment: ["HARP_APP_PASSWORD": "alice-pw"])
        #expect(fromFlag.process.terminationStatus == 7, "\(fromFlag.stderr)")
        withExtendedLifetime(down) {}
    }

    @Test func aTypoInTheFileIsAUsageErrorNamingTheLine() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        _ = bed.environment(peer: "typo")
        try writeConfig(
            bed, peer: "typo", "server = \"\(bed.cloudURL)\"\n\n[signal]\nurll = \"ws://127.0.0.1:1/v1/ws\"\n")
        let typo = try await run(
            bed, peer: "typo", ["get", "/x.bin"], environment: ["HARP_USER": "alice", "HARP_APP_PASSWORD": "alice-pw"])
        #expect(typo.process.terminationStatus == 2)
        #expect(typo.stderr.contains("line 4") && typo.stderr.contains("signal.urll"), "\(typo.stderr)")
        try writeConfig(bed, peer: "typo", "[limits]\nparallel_files = \"many\"\n")
        let wrongType = try await run(
            bed, peer: "typo", ["get", "/x.bin"], environment: ["HARP_USER": "alice", "HARP_APP_PASSWORD": "alice-pw"])
        #expect(wrongType.process.terminationStatus == 2)
        #expect(wrongType.stderr.contains("limits.parallel_files"), "\(wrongType.stderr)")
    }
}
