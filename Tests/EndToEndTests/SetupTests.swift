import Foundation
import Testing

/// Set-up mistakes a new user makes, through the real binary: a signaling URL without its path, a URL that is not a
/// signaling endpoint, and two accounts (or CI jobs) that differ only in `HOME`.
@Suite("Set-up (real processes)", .serialized)
struct SetupTests {
    /// `ws://host:port` means the server's `/v1/ws`: the fetch finds the swarm.
    @Test func aSignalingURLWithoutAPathMeansTheWebSocketEndpoint() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let original = try bed.makeFile("f.bin", size: 4 << 20)
        try await bed.upload(original)
        _ = try await SwarmTests().startSeeder(bed, "seeder", "/f.bin")
        let bare = try #require(bed.signalURL.components(separatedBy: "/v1/ws").first)
        let fetcher = try await bed.run("peer", ["get", "/f.bin", "-o", "copy/", "--json", "--signal", bare])
        #expect(fetcher.process.terminationStatus == 0, "\(fetcher.stderr.suffix(1500))")
        let done = try #require(fileDone(fetcher))
        #expect(done["method"] as? String == "swarm" && int64(done["bytesFromPeers"]) > 0, "\(done)")
    }

    /// A URL the server refuses to upgrade is reported at once, with what to fix.
    @Test func aRefusedUpgradeIsReportedWithWhatToFix() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let original = try bed.makeFile("f.bin", size: 1 << 20)
        try await bed.upload(original)
        let wrong = bed.signalURL.replacingOccurrences(of: "/v1/ws", with: "/not-the-endpoint")
        let fetcher = try await bed.run("peer", ["get", "/f.bin", "-o", "copy/", "--signal", wrong])
        #expect(fetcher.process.terminationStatus == 0, "\(fetcher.stderr.suffix(1500))")
        #expect(fetcher.stderr.contains("refused the WebSocket upgrade"), "\(fetcher.stderr.suffix(1500))")
        #expect(fetcher.stderr.contains("/v1/ws"), "\(fetcher.stderr.suffix(1500))")
    }

    /// The store follows `$HOME` (XDG defaults), so processes with different homes keep separate stores.
    @Test func differentHomesKeepSeparateStores() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let file = try bed.makeFile("f.bin", size: 300_000)
        for name in ["a", "b"] {
            try FileManager.default.createDirectory(atPath: bed.home(name), withIntermediateDirectories: true)
            var environment = Testbed.baseEnvironment
            environment["HOME"] = bed.home(name)
            let index = try LaunchedProcess(
                name: "index-\(name)", arguments: ["index", file], environment: environment, directory: bed.home(name))
            #expect(await index.wait() == 0, "\(index.stderr)")
            #expect(
                FileManager.default.fileExists(atPath: bed.home(name) + "/.local/share/harp/store.sqlite"),
                "no store under \(name)'s HOME")
        }
    }
}
