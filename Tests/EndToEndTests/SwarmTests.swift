import ChunkStore
import Foundation
import Testing

/// The swarm end to end: DevCloud, the signaling server and every peer as separate `harp-cli` processes on loopback.
@Suite("Swarm (real processes)", .serialized)
struct SwarmTests {
    /// Starts a seeder that fetched `remote` from the server (publishing its sidecar) and waits until it seeds.
    func startSeeder(
        _ bed: Testbed, _ name: String, _ remote: String, extra: [String] = []
    ) async throws
        -> LaunchedProcess
    {
        let seeder = try bed.start(name, ["get", remote, "-o", "copy/", "--seed"] + extra)
        let ready = await seeder.waitForLine(timeout: 180) { $0.hasPrefix("seeding") }
        try #require(ready != nil, "the seeder did not start seeding: \(seeder.output) \(seeder.stderr)")
        return seeder
    }

    @Test func oneSeederAndFivePeersShareA256MiBFile() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let size = 256 << 20
        let original = try bed.makeFile("big.bin", size: size)
        try await bed.upload(original)
        let uploadedBytes = try await bed.cloudBytesSent()

        // The seeder's upload is limited, so the peers must trade with each other.
        _ = try await startSeeder(bed, "seeder", "/big.bin", extra: ["--upload-limit", "96M"])
        var fetchers: [LaunchedProcess] = []
        for index in 1...5 {
            fetchers.append(try bed.start("peer\(index)", ["get", "/big.bin", "-o", "copy/", "--json"]))
        }
        for (index, fetcher) in fetchers.enumerated() {
            let status = await fetcher.wait()
            #expect(status == 0, "peer\(index + 1) failed: \(fetcher.stderr.suffix(2000))")
            let copy = bed.home("peer\(index + 1)") + "/copy/big.bin"
            #expect(try sameContents(original, copy), "peer\(index + 1)'s copy differs")
            let done = try #require(fileDone(fetcher))
            #expect(done["method"] as? String == "swarm")
            let sources = int64(done["peersUsed"]) + (int64(done["bytesFromServer"]) > 0 ? 1 : 0)
            #expect(sources >= 2, "peer\(index + 1) received chunks from only \(sources) source(s): \(done)")
            #expect(int64(done["bytesFromPeers"]) + int64(done["bytesFromServer"]) == Int64(size))
        }
        // The server sent one copy to the seeder and little else: under 1.2 copies in total.
        let egress = try await bed.cloudBytesSent() - uploadedBytes
        #expect(egress < Int64(Double(size) * 1.2), "the server sent \(Double(egress) / Double(size)) copies")
        #expect(egress >= Int64(size), "the seeder's own download must have come from the server")
    }

    @Test func aPeerThatCorruptsChunksIsDetectedAndTheOthersFinish() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let size = 48 << 20
        let original = try bed.makeFile("f.bin", size: size)
        try await bed.upload(original)

        // An honest seeder with a slow uplink, and a fast liar that corrupts every tenth chunk it sends.
        _ = try await startSeeder(bed, "honest", "/f.bin", extra: ["--upload-limit", "8M"])
        _ = try await startSeeder(bed, "liar", "/f.bin", extra: ["--debug-corrupt-every", "10"])
        var fetchers: [LaunchedProcess] = []
        for index in 1...3 {
            fetchers.append(try bed.start("peer\(index)", ["get", "/f.bin", "-o", "copy/", "--json"]))
        }
        var badChunks: Int64 = 0
        for (index, fetcher) in fetchers.enumerated() {
            let status = await fetcher.wait()
            #expect(status == 0, "peer\(index + 1) failed: \(fetcher.stderr.suffix(2000))")
            #expect(try sameContents(original, bed.home("peer\(index + 1)") + "/copy/f.bin"))
            badChunks += int64(fileDone(fetcher)?["badChunks"])
        }
        #expect(badChunks > 0, "no corrupt chunk was ever detected")
    }

    @Test func killDashNineAtHalfwayResumesWithoutFetchingAgain() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let size = 96 << 20
        let original = try bed.makeFile("f.bin", size: size)
        try await bed.upload(original)
        _ = try await startSeeder(bed, "seeder", "/f.bin", extra: ["--upload-limit", "24M"])

        let first = try bed.start("peer", ["get", "/f.bin", "-o", "copy/", "--json"])
        let halfway = await first.waitForProgress(atLeast: Int64(size / 2))
        try #require(halfway, "no progress to 50 %: \(first.stderr.suffix(2000))")
        first.signal(SIGKILL)
        await first.wait()
        #expect(first.process.terminationReason == .uncaughtSignal)
        let copy = bed.home("peer") + "/copy/f.bin"
        #expect(!FileManager.default.fileExists(atPath: copy), "a partial file was renamed into place")

        // What the killed process left verified on disk, as the store records it.
        let reference = try ChunkStore(path: bed.directory + "/reference.sqlite")
        let root = try reference.index(file: original).root
        var recordedBytes: Int64 = 0
        do {
            let store = try ChunkStore(path: bed.home("peer") + "/store.sqlite")
            let manifest = try #require(try store.manifest(root: root))
            let sink = try store.openDownload(manifest: manifest, root: root, destination: copy)
            recordedBytes = sink.recordedChunks.reduce(Int64(0)) { $0 + Int64(manifest.chunks[$1].length) }
        }
        #expect(recordedBytes >= Int64(size / 4), "too little survived the kill: \(recordedBytes)")
        #expect(recordedBytes < Int64(size))

        let second = try await bed.run("peer", ["get", "/f.bin", "-o", "copy/", "--json"])
        #expect(second.process.terminationStatus == 0, "\(second.stderr.suffix(2000))")
        #expect(try sameContents(original, copy))
        let done = try #require(fileDone(second))
        let fetchedAgain = int64(done["bytesFromPeers"]) + int64(done["bytesFromServer"])
        #expect(
            fetchedAgain == Int64(size) - recordedBytes,
            "fetched \(fetchedAgain) of \(Int64(size) - recordedBytes) missing bytes")
    }

    @Test func aPeerThatFinishesFirstKeepsServingThoseStillFetching() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let size = 8 << 20
        let original = try bed.makeFile("f.bin", size: size)
        try await bed.upload(original)
        // The origin and the first peer send 1 MiB/s each; the second peer starts when the first is halfway, so when
        // the first has the file, the second still lacks chunks that only the first has.
        _ = try await startSeeder(bed, "seeder", "/f.bin", extra: ["--upload-limit", "1M"])
        let first = try bed.start(
            "first",
            ["get", "/f.bin", "-o", "copy/", "--no-server", "--json", "--upload-limit", "1M", "--linger", "60"])
        let halfway = await first.waitForProgress(atLeast: Int64(size / 2))
        try #require(halfway, "no progress to 50 %: \(first.stderr.suffix(2000))")
        let second = try bed.start("second", ["get", "/f.bin", "-o", "copy/", "--no-server", "--json"])
        #expect(await second.wait() == 0, "\(second.stderr.suffix(2000))")
        let secondExited = ContinuousClock.now
        #expect(await first.wait() == 0, "\(first.stderr.suffix(2000))")
        // It left once the second peer had everything, long before its 60 s were up.
        #expect(ContinuousClock.now - secondExited < .seconds(20))
        #expect(try sameContents(original, bed.home("first") + "/copy/f.bin"))
        #expect(try sameContents(original, bed.home("second") + "/copy/f.bin"))
        // The first peer sent chunks after its own file was in place: it stayed for the second peer.
        let done = try #require(fileDone(first))
        let uploads = try #require(first.jsonLines.first { $0["event"] as? String == "uploads" })
        #expect(
            int64(uploads["bytesUploaded"]) > int64(done["bytesUploaded"]),
            "sent \(int64(done["bytesUploaded"])) bytes by its file-done and \(int64(uploads["bytesUploaded"])) in all")
    }

    @Test func aUserWithoutAccessIsRefusedAndNeverJoins() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let original = try bed.makeFile("secret.bin", size: 8 << 20)
        try await bed.upload(original, to: "/")
        _ = try await startSeeder(bed, "seeder", "/secret.bin")
        let joinsBefore = try await bed.signalMetric("harp_signal_joins_total")
        let connectedBefore = try await bed.signalMetric("harp_signal_connections")
        // The seeder's one join (it answers before the seeder reports seeding): the metric is read, not missing (-1).
        #expect(joinsBefore == 1)

        let bob = try await bed.run("bob", ["get", "/secret.bin", "-o", "copy/", "--json"], user: "bob")
        #expect(bob.process.terminationStatus == 4, "\(bob.stderr)")
        #expect(!FileManager.default.fileExists(atPath: bed.home("bob") + "/copy/secret.bin"))
        #expect(try await bed.signalMetric("harp_signal_joins_total") == joinsBefore)
        #expect(try await bed.signalMetric("harp_signal_connections") == connectedBefore)
    }

    /// A new version uploaded while the first is being fetched: a Range request's If-Match fails (412), the partial
    /// file of the first version is discarded, never renamed into place, and the file is listed again and fetched as
    /// it is now.
    @Test func aFileChangedOnTheServerDuringTheDownloadIsFetchedAgainAsItIsNow() async throws {
        // 8 MiB/s from DevCloud, so the 64 MiB download takes about 8 s.
        let bed = try await Testbed(cloudArguments: ["--egress-limit", "8388608"])
        defer { bed.shutdown() }
        let original = try bed.makeFile("f.bin", size: 64 << 20)
        try await bed.upload(original)
        let fetcher = try bed.start("peer", ["get", "/f.bin", "-o", "copy/", "--json"])
        let part = bed.home("peer") + "/copy/f.bin.harp-part"
        try await waitUntil("the download to start (\(part)): \(fetcher.stderr.suffix(1000))", timeout: 60) {
            FileManager.default.fileExists(atPath: part)
        }
        // A new version with the same name, uploaded while the first is being fetched.
        try FileManager.default.createDirectory(atPath: bed.directory + "/v2", withIntermediateDirectories: true)
        try FileManager.default.moveItem(
            atPath: try bed.makeFile("f2.bin", size: 64 << 20), toPath: bed.directory + "/v2/f.bin")
        try await bed.upload(bed.directory + "/v2/f.bin")

        let status = await fetcher.wait()
        #expect(status == 0, "\(fetcher.stderr.suffix(1000))")
        let done = fetcher.jsonLines.first { $0["event"] as? String == "file-done" }
        let notes = (done?["notes"] as? [String]) ?? []
        #expect(notes.contains { $0.contains("changed on the server after it was listed") }, "\(notes)")
        #expect(
            FileManager.default.contentsEqual(
                atPath: bed.home("peer") + "/copy/f.bin", andPath: bed.directory + "/v2/f.bin"),
            "the copy is the new version, never the first one's bytes")
        #expect(!FileManager.default.fileExists(atPath: part))
    }

    @Test func putThenSeedThenRecursiveGetComesFromPeers() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let folder = bed.home("author") + "/Project"
        try FileManager.default.createDirectory(atPath: folder + "/sub", withIntermediateDirectories: true)
        let a = try bed.makeFile("a.bin", size: 12 << 20)
        let b = try bed.makeFile("b.bin", size: 700_000)
        try FileManager.default.copyItem(atPath: a, toPath: folder + "/a.bin")
        try FileManager.default.copyItem(atPath: b, toPath: folder + "/sub/b.bin")

        let put = try await bed.run("author", ["put", "-R", "Project", "/", "--json"])
        #expect(put.process.terminationStatus == 0, "\(put.stderr)")
        #expect(put.jsonLines.filter { $0["event"] as? String == "file-done" }.count == 2)
        let seeder = try bed.start("author", ["seed", "Project", "--remote", "/Project", "--json"])
        try await waitUntil("the seeder to seed both files: \(seeder.output) \(seeder.stderr)", timeout: 240) {
            seeder.jsonLines.filter { $0["event"] as? String == "seeding" }.count >= 2
        }
        #expect(seeder.jsonLines.filter { $0["event"] as? String == "seeding" }.count == 2, "\(seeder.output)")

        let before = try await bed.cloudBytesSent()
        let get = try await bed.run("reader", ["get", "-R", "/Project", "-o", "copy", "--json"])
        #expect(get.process.terminationStatus == 0, "\(get.stderr)")
        #expect(try sameContents(a, bed.home("reader") + "/copy/a.bin"))
        #expect(try sameContents(b, bed.home("reader") + "/copy/sub/b.bin"))
        let done = get.jsonLines.filter { $0["event"] as? String == "file-done" }
        #expect(done.count == 2)
        for file in done {
            #expect(file["method"] as? String == "swarm")
            #expect(int64(file["bytesFromServer"]) == 0, "\(file)")
        }
        // The server sent sidecars, manifests and two spot-checked chunks, not the files.
        let sent = try await bed.cloudBytesSent() - before
        #expect(sent < 12 << 20, "the server sent \(sent) bytes")
    }

    /// Two files, two swarms, one seeder process and one fetcher process: the second swarm is attached to the
    /// connection made for the first (docs/protocol.md §5.4), not dialled again.
    @Test func twoFilesFromOneSeederShareOneConnection() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let size = 16 << 20
        let a = try bed.makeFile("a.bin", size: size)
        let b = try bed.makeFile("b.bin", size: size)
        try await bed.upload(a)
        try await bed.upload(b)
        let seeder = try bed.start(
            "seeder", ["get", "/a.bin", "/b.bin", "-o", "copy/", "--seed", "--upload-limit", "12M"])
        let ready = await seeder.waitForLine(timeout: 180) { $0.hasPrefix("seeding 2 file(s)") }
        try #require(ready != nil, "the seeder did not seed both files: \(seeder.output) \(seeder.stderr)")
        let get = try await bed.run(
            "peer", ["get", "/a.bin", "/b.bin", "-o", "copy/", "--no-server", "--json"])
        #expect(get.process.terminationStatus == 0, "\(get.stderr.suffix(3000))")
        #expect(try sameContents(a, bed.home("peer") + "/copy/a.bin"))
        #expect(try sameContents(b, bed.home("peer") + "/copy/b.bin"))
        // While both files were on their way, the seeder was one peer reached twice: channel 0 for the swarm the
        // connection was made for, another channel for the other swarm.
        let shared = get.jsonLines.contains { line in
            guard line["event"] as? String == "progress", let links = line["connections"] as? [[String: Any]] else {
                return false
            }
            let channels = links.map { int64($0["channel"]) }
            return links.count == 2 && Set(links.compactMap { $0["peer"] as? String }).count == 1
                && channels.contains(0) && channels.contains { $0 > 0 }
        }
        #expect(shared, "no progress line showed the two swarms on one connection: \(get.output.suffix(3000))")
        for file in get.jsonLines.filter({ $0["event"] as? String == "file-done" }) {
            #expect(int64(file["bytesFromPeers"]) == Int64(size), "\(file)")
        }
    }

    @Test func peersThatCannotReachEachOtherConnectThroughTheRelay() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let size = 16 << 20
        let original = try bed.makeFile("f.bin", size: size)
        try await bed.upload(original)

        // Both announce an address nothing listens on, so every direct dial is refused: only the relay is left.
        _ = try await startSeeder(bed, "seeder", "/f.bin", extra: ["--advertise", "127.0.0.9"])
        let relayedBefore = try await bed.signalMetric("harp_signal_relayed_bytes_total")
        let get = try await bed.run(
            "peer", ["get", "/f.bin", "-o", "copy/", "--no-server", "--json", "--advertise", "127.0.0.9"])
        #expect(get.process.terminationStatus == 0, "\(get.stderr.suffix(3000))")
        #expect(try sameContents(original, bed.home("peer") + "/copy/f.bin"))
        let done = try #require(get.jsonLines.first { $0["event"] as? String == "file-done" })
        #expect(int64(done["bytesFromPeers"]) == Int64(size), "\(done)")
        // Every byte crossed the signaling server's relay (as Noise ciphertext, framing included).
        let relayed = try await bed.signalMetric("harp_signal_relayed_bytes_total") - relayedBefore
        #expect(relayed >= Double(size), "the relay forwarded \(relayed) bytes")
    }

    @Test func theTransferCompletesWhenTheSignalingServerGoesDown() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let size = 64 << 20
        let original = try bed.makeFile("f.bin", size: size)
        try await bed.upload(original)
        _ = try await startSeeder(bed, "seeder", "/f.bin", extra: ["--upload-limit", "16M"])
        let fetcher = try bed.start("peer", ["get", "/f.bin", "-o", "copy/", "--json"])
        let started = await fetcher.waitForLine(timeout: 120) { line in
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                object["event"] as? String == "progress"
            else { return false }
            return int64(object["bytesFromPeers"]) > 0
        }
        try #require(started != nil, "no bytes from peers: \(fetcher.stderr.suffix(2000))")
        bed.signalServer.signal(SIGKILL)
        await bed.signalServer.wait()
        let status = await fetcher.wait()
        #expect(status == 0, "\(fetcher.stderr.suffix(2000))")
        #expect(try sameContents(original, bed.home("peer") + "/copy/f.bin"))
        let done = try #require(fileDone(fetcher))
        #expect(int64(done["bytesFromPeers"]) == Int64(size))
    }

    @Test func aLockThatMovesTheEtagKeepsTheFileInTheSwarm() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let size = 16 << 20
        let original = try bed.makeFile("f.bin", size: size)
        try await bed.upload(original)
        _ = try await startSeeder(bed, "seeder", "/f.bin")
        // A files_lock user lock: Nextcloud (and DevCloud) give the file a new etag, its bytes stay the same.
        #expect(try await bed.userLock("/f.bin") == 200)

        let first = try await bed.run("peer1", ["get", "/f.bin", "-o", "copy/", "--json"])
        #expect(first.process.terminationStatus == 0, "\(first.stderr)")
        let done = try #require(fileDone(first))
        #expect(done["method"] as? String == "swarm")
        #expect(int64(done["bytesFromPeers"]) == Int64(size))
        #expect((done["notes"] as? [String])?.contains { $0.contains("etag moved") } == true, "\(done)")
        #expect(try sameContents(original, bed.home("peer1") + "/copy/f.bin"))
        // The sidecar was republished with the new etag: the next fetcher finds it valid.
        let second = try await bed.run("peer2", ["get", "/f.bin", "-o", "copy/", "--json"])
        let again = try #require(fileDone(second))
        #expect(again["method"] as? String == "swarm")
        #expect((again["notes"] as? [String])?.isEmpty == true, "\(again)")
    }

    @Test func theDemoRunsEndToEndAndReportsASummary() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let demo = try await bed.run("demo", ["demo", "--size", "24", "--peers", "3", "--json"], signal: false)
        #expect(demo.process.terminationStatus == 0, "\(demo.stderr.suffix(2000))")
        let summary = try #require(demo.jsonLines.first { $0["event"] as? String == "summary" })
        #expect(summary["verified"] as? Bool == true)
        #expect(int64(summary["bytes"]) == 24 << 20)
        let rows = try #require(summary["peerResults"] as? [[String: Any]])
        #expect(rows.count == 3)
        #expect(rows.allSatisfy { $0["verified"] as? Bool == true })
        #expect(rows.reduce(Int64(0)) { $0 + int64($1["bytesFromPeers"]) } > 24 << 20, "most bytes came from peers")
        #expect((summary["serverCopies"] as? NSNumber)?.doubleValue ?? 9 < 1.0)
        // The speed-up is the ratio of the two phases' times it reports (not a figure this test could judge).
        let alone = try #require((summary["serverAloneSeconds"] as? NSNumber)?.doubleValue)
        let swarm = try #require((summary["swarmSeconds"] as? NSNumber)?.doubleValue)
        let speedUp = try #require((summary["speedUp"] as? NSNumber)?.doubleValue)
        #expect(abs(speedUp - alone / swarm) < 0.02 * max(1, speedUp), "\(summary)")
        // The demo removes its folder and stops its processes.
        let folder = try #require(summary["directory"] as? String)
        #expect(!FileManager.default.fileExists(atPath: folder))
    }

    @Test func statusShowsWhatARunningSeederDoes() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let original = try bed.makeFile("f.bin", size: 4 << 20)
        try await bed.upload(original)
        let seeder = try await startSeeder(bed, "seeder", "/f.bin")
        var seen: [String: Any]?
        try await waitUntil("status to show the seeder in one swarm", timeout: 60) {
            let status = try await bed.run("seeder", ["status", "--json"])
            seen = status.jsonLines.first
            let processes = seen?["processes"] as? [[String: Any]] ?? []
            return processes.contains {
                int64($0["pid"]) == Int64(seeder.process.processIdentifier) && int64($0["swarms"]) == 1
            }
        }
        let status = try #require(seen)
        let store = try #require(status["store"] as? [String: Any])
        #expect(int64(store["indexedBytes"]) == 4 << 20)
        #expect(int64(store["files"]) == 1)
        // Once the seeder has stopped, status no longer lists it.
        seeder.signal(SIGINT)
        #expect(await seeder.wait() == 0)
        let after = try await bed.run("seeder", ["status", "--json"])
        #expect((after.jsonLines.first?["processes"] as? [[String: Any]])?.isEmpty == true)
    }

    @Test func anUnreachableSignalingServerDoesNotStallAGet() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let original = try bed.makeFile("f.bin", size: 3 << 20)
        try await bed.upload(original)
        // A first get publishes the sidecar and the manifest (and exits: no seeder).
        let first = try await bed.run("first", ["get", "/f.bin"])
        #expect(first.process.terminationStatus == 0, "\(first.stderr)")
        var environment = bed.environment(peer: "late")
        let down = try RefusingPort()
        environment["HARP_SIGNAL"] = "ws://127.0.0.1:\(down.port)/v1/ws"
        let started = Date()
        let late = try LaunchedProcess(
            name: "late", arguments: ["get", "/f.bin", "--json"], environment: environment, directory: bed.home("late"))
        #expect(await late.wait(timeout: 120) == 0, "\(late.stderr.suffix(1500))")
        withExtendedLifetime(down) {}
        #expect(Date().timeIntervalSince(started) < 60)
        #expect(try sameContents(original, bed.home("late") + "/f.bin"))
        #expect(int64(fileDone(late)?["bytesFromServer"]) == 3 << 20)
    }
}
