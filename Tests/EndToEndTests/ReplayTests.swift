import Foundation
import Testing

/// `get --record-engine` and `debug replay`: a recorded run of real processes replays, event by event, into the same
/// actions in a fresh process.
@Suite("Engine replay (real processes)", .serialized)
struct ReplayTests {
    @Test func aRecordedRunOfOneSeederAndFourFetchersReplaysIdentically() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let original = try bed.makeFile("clip.bin", size: 48 << 20)
        try await bed.upload(original)
        let seeder = try bed.start("seeder", ["get", "/clip.bin", "-o", "copy/", "--seed", "--upload-limit", "32M"])
        let ready = await seeder.waitForLine(timeout: 180) { $0.hasPrefix("seeding") }
        try #require(ready != nil, "the seeder did not start seeding: \(seeder.stderr.suffix(2000))")

        var fetchers: [LaunchedProcess] = []
        for index in 1...4 {
            fetchers.append(
                try bed.start(
                    "peer\(index)", ["get", "/clip.bin", "-o", "copy/", "--json", "--record-engine", "engine.jsonl"]))
        }
        for (index, fetcher) in fetchers.enumerated() {
            let status = await fetcher.wait()
            #expect(status == 0, "peer\(index + 1) failed: \(fetcher.stderr.suffix(2000))")
            let done = try #require(fileDone(fetcher))
            #expect(done["method"] as? String == "swarm")
        }
        for index in 1...4 {
            let recording = bed.home("peer\(index)") + "/engine.jsonl"
            let attributes = try FileManager.default.attributesOfItem(atPath: recording)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
            let replay = try await bed.run("peer\(index)", ["debug", "replay", recording])
            let lines = replay.output
            #expect(
                replay.process.terminationStatus == 0,
                "peer\(index) replay: \(replay.output) \(replay.stderr.suffix(2000))")
            #expect(lines.last == "identical", "peer\(index) replay: \(replay.output)")
            let events = lines.first { $0.hasPrefix("events: ") }.flatMap { Int($0.dropFirst(8)) } ?? 0
            let actions = lines.first { $0.hasPrefix("actions: ") }.flatMap { Int($0.dropFirst(9)) } ?? 0
            #expect(events > 100, "peer\(index) recorded only \(events) events")
            #expect(actions > events / 2, "peer\(index) recorded only \(actions) actions")
            print("peer\(index): \(events) events, \(actions) actions replayed identically")
        }

        // A recording edited by hand no longer replays identically, and says so with exit 1.
        let recording = bed.home("peer1") + "/engine.jsonl"
        var text = try String(contentsOfFile: recording, encoding: .utf8)
        let target = "\"unchoke\""
        try #require(text.contains(target), "no unchoke in the recording")
        // Every unchoke, not only the first: in one CI run the edit of the first alone replayed identically (an
        // unchoke that changes no action, such as one from a peer with nothing to ask for yet, can come first).
        text = text.replacingOccurrences(of: target, with: "\"choke\"")
        try text.write(toFile: recording, atomically: true, encoding: .utf8)
        let edited = try await bed.run("peer1", ["debug", "replay", recording])
        #expect(edited.process.terminationStatus == 1)
        #expect(edited.output.contains { $0.hasPrefix("different") })
        seeder.signal(SIGTERM)
    }

    /// `seed --record-engine`: a folder seeder's engines record too (the late seeder of the swarm benchmark is a
    /// `seed`), and the recording of one that served a fetcher and was then stopped replays identically.
    @Test func aRecordedFolderSeederReplaysIdentically() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let original = try bed.makeFile("seeded/clip.bin", size: 24 << 20)
        let put = try await bed.run("origin", ["put", original, "/", "--json"])
        try #require(put.process.terminationStatus == 0, "\(put.stderr)")
        let seeder = try bed.start(
            "origin", ["seed", bed.directory + "/seeded", "--remote", "/", "--json", "--record-engine", "seed.jsonl"])
        let seeding = await seeder.waitForLine(timeout: 120) { $0.contains("\"event\":\"seeding\"") }
        try #require(seeding != nil, "\(seeder.output) \(seeder.stderr.suffix(2000))")
        let fetcher = try bed.start("fetcher", ["get", "/clip.bin", "-o", "copy/", "--json"])
        #expect(await fetcher.wait() == 0, "\(fetcher.stderr.suffix(2000))")
        let done = try #require(fileDone(fetcher))
        #expect(int64(done["bytesFromPeers"]) > 0, "\(done)")
        seeder.signal(SIGTERM)
        #expect(await seeder.wait() == 0, "\(seeder.stderr.suffix(2000))")

        let recording = bed.home("origin") + "/seed.jsonl"
        let attributes = try FileManager.default.attributesOfItem(atPath: recording)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let replay = try await bed.run("origin", ["debug", "replay", recording])
        #expect(replay.process.terminationStatus == 0, "\(replay.output) \(replay.stderr.suffix(2000))")
        #expect(replay.output.last == "identical", "\(replay.output)")
        let events = replay.output.first { $0.hasPrefix("events: ") }.flatMap { Int($0.dropFirst(8)) } ?? 0
        #expect(events > 100, "the seeder recorded only \(events) events")
        print("seed: \(events) events replayed identically")
    }
}
