import Foundation
import Testing

/// Every documented exit code, each caused for real (docs/cli.md, "Exit codes").
@Suite("Exit codes (real processes)", .serialized)
struct ExitCodeTests {
    @Test func eachKindOfFailureHasItsCode() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let original = try bed.makeFile("f.bin", size: 2 << 20)
        try await bed.upload(original)

        // 2: usage.
        #expect(try await bed.run("u", ["get"]).process.terminationStatus == 2)
        #expect(try await bed.run("u", ["get", "/f.bin", "--signal", "http://not-ws"]).process.terminationStatus == 2)
        // 3: a wrong app password.
        var wrong = bed.environment(peer: "w")
        wrong["HARP_APP_PASSWORD"] = "not-the-password"
        let denied = try LaunchedProcess(
            name: "wrong", arguments: ["get", "/f.bin"], environment: wrong, directory: bed.home("w"))
        #expect(await denied.wait() == 3, "\(denied.stderr)")
        // 4: no such file (or no access: Nextcloud answers the same).
        #expect(try await bed.run("n", ["get", "/missing.bin"]).process.terminationStatus == 4)
        // 5: peers only, and there is no swarm.
        let partial = try await bed.run("p", ["get", "/f.bin", "--no-server"], signal: false)
        #expect(partial.process.terminationStatus == 5, "\(partial.stderr)")
        #expect(!FileManager.default.fileExists(atPath: bed.home("p") + "/f.bin"))
        // 7: the server cannot be reached.
        let down = try RefusingPort()
        #expect(
            try await bed.run("x", ["get", "/f.bin", "--server", "http://127.0.0.1:\(down.port)"]).process
                .terminationStatus == 7)
        withExtendedLifetime(down) {}
    }

    @Test func aSidecarThatDoesNotDescribeTheServersFileFailsPeersOnlyAndFallsBackToTheServer() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        // Two versions of the same size with the same modification time: only the bytes differ.
        let first = try bed.makeFile("v1/f.bin", size: 6 << 20)
        let second = try bed.makeFile("v2/f.bin", size: 6 << 20)
        let sameTime = Date(timeIntervalSince1970: 1_700_000_000)
        for path in [first, second] {
            try FileManager.default.setAttributes([.modificationDate: sameTime], ofItemAtPath: path)
        }
        try await bed.upload(first)
        // A seeder of version 1 publishes its sidecar, then the file is replaced by version 2 on the server.
        _ = try await SwarmTests().startSeeder(bed, "seeder", "/f.bin")
        try await bed.upload(second)

        // Peers only: the samples catch it before the rename, and there is nothing to fall back to.
        let peersOnly = try await bed.run("peer", ["get", "/f.bin", "-o", "copy/", "--json", "--no-server"])
        #expect(peersOnly.process.terminationStatus == 6, "\(peersOnly.stderr.suffix(1500))")
        #expect(!FileManager.default.fileExists(atPath: bed.home("peer") + "/copy/f.bin"))
        #expect(
            peersOnly.jsonLines.contains {
                ($0["message"] as? String)?.contains("differ from the server's file") == true
            },
            "\(peersOnly.output)")
        // With the server: the same finding, then the file comes from the server (version 2) and exit 0.
        let fetcher = try await bed.run("peer", ["get", "/f.bin", "-o", "copy/", "--json"])
        #expect(fetcher.process.terminationStatus == 0, "\(fetcher.stderr.suffix(1500))")
        #expect(try sameContents(second, bed.home("peer") + "/copy/f.bin"))
        #expect(fileDone(fetcher)?["method"] as? String == "server")
    }
}
