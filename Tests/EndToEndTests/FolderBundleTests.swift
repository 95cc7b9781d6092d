import Foundation
import Testing

/// Issue 15, item 1: a folder's small files are one swarm (a bundle), seeded with one join and fetched with one folder
/// sidecar, from peers, compared with the server by samples of the whole bundle.
@Suite("Folder bundles (real processes)")
struct FolderBundleTests {
    @Test func aSeededFoldersSmallFilesComeFromPeersThroughOneBundle() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let folder = bed.home("author") + "/Clips"
        try FileManager.default.createDirectory(atPath: folder + "/day1/a", withIntermediateDirectories: true)
        var small: [String: String] = [:]
        var smallBytes = 0
        // More small files than a comparison takes samples: the server's requests must not grow with the count.
        for index in 0..<150 {
            let size = index % 10 == 0 ? 1 + (index * 8_737) % (256 << 10) : 1 + (index * 997) % 20_000
            let relative = (index % 3 == 0 ? "day1/a/" : index % 3 == 1 ? "day1/" : "") + "clip\(index).bin"
            let made = try bed.makeFile("clip\(index).bin", size: size)
            try FileManager.default.copyItem(atPath: made, toPath: folder + "/" + relative)
            small[relative] = made
            smallBytes += size
        }
        let large = try bed.makeFile("large.bin", size: 3 << 20)
        try FileManager.default.copyItem(atPath: large, toPath: folder + "/large.bin")

        let put = try await bed.run("author", ["put", "-R", "Clips", "/", "--json"])
        #expect(put.process.terminationStatus == 0, "\(put.stderr)")
        let seeder = try bed.start("author", ["seed", "Clips", "--remote", "/Clips", "--json"])
        try await waitUntil("the seeder to seed all 151 files: \(seeder.output) \(seeder.stderr)", timeout: 240) {
            seeder.jsonLines.filter { $0["event"] as? String == "seeding" }.count >= 151
        }
        let seeding = seeder.jsonLines.filter { $0["event"] as? String == "seeding" }
        // The 150 small files share one swarm; the large file has its own.
        let swarms = Set(seeding.compactMap { $0["swarm"] as? String })
        #expect(swarms.count == 2, "\(seeding)")

        let statsBefore = try await bed.cloudStats()
        let get = try await bed.run("reader", ["get", "-R", "/Clips", "-o", "copy", "--json"])
        #expect(
            get.process.terminationStatus == 0,
            "\(get.stderr) \(get.output.filter { !$0.contains("file-done") }) \(seeder.stderr.suffix(3000))")
        let statsAfter = try await bed.cloudStats()
        for (relative, original) in small {
            #expect(try sameContents(original, bed.home("reader") + "/copy/" + relative), "\(relative)")
        }
        #expect(try sameContents(large, bed.home("reader") + "/copy/large.bin"))
        let done = get.jsonLines.filter { $0["event"] as? String == "file-done" }
        #expect(done.count == 151)
        let bundled = done.filter { ($0["path"] as? String)?.hasSuffix("large.bin") == false }
        #expect(
            bundled.allSatisfy { $0["method"] as? String == "swarm" },
            "\(get.jsonLines.filter { $0["event"] as? String == "note" }) \(get.stderr.suffix(4000)) SEEDER \(seeder.stderr.suffix(4000))"
        )
        #expect(bundled.reduce(Int64(0)) { $0 + int64($1["bytesFromPeers"]) } == Int64(smallBytes))
        #expect(bundled.reduce(Int64(0)) { $0 + int64($1["bytesFromServer"]) } == 0)
        // The server sent the listing, one folder sidecar, the large file's sidecar and manifest, and samples: far
        // fewer requests than files, and a small share of the bytes.
        let gets = requests(statsAfter, "GET") - requests(statsBefore, "GET")
        #expect(gets < 150, "\(gets) GETs for 150 small files")
        let sent = int64(statsAfter["bytesSent"]) - int64(statsBefore["bytesSent"])
        #expect(sent < Int64(smallBytes + (3 << 20)) / 4, "the server sent \(sent) bytes")

        // With the seeder gone, the bundle's published manifest lets a fetcher start at once with the server as web
        // seed, one Range GET per file, instead of waiting for a peer that will not come.
        seeder.signal(SIGTERM)
        _ = await seeder.wait()
        let alone = try await bed.run("alone", ["get", "-R", "/Clips", "-o", "copy", "--json"])
        #expect(alone.process.terminationStatus == 0, "\(alone.stderr)")
        let aloneDone = alone.jsonLines.filter { $0["event"] as? String == "file-done" }
        let aloneBundled = aloneDone.filter { ($0["notes"] as? [String] ?? []).contains { $0.contains("bundle") } }
        #expect(aloneBundled.count == 150, "\(alone.jsonLines.filter { $0["event"] as? String == "note" })")
        #expect(aloneBundled.reduce(Int64(0)) { $0 + int64($1["bytesFromServer"]) } == Int64(smallBytes))
        // Bytes that all came from the server under If-Match are not compared with it again.
        #expect(aloneBundled.allSatisfy { $0["check"] is NSNull }, "\(aloneBundled.first ?? [:])")
        for (relative, original) in small {
            #expect(try sameContents(original, bed.home("alone") + "/copy/" + relative), "\(relative)")
        }

        // A small file changed on the server after the bundle was written: its new version comes as the server has
        // it (the bundle no longer describes the folder until the seeder's next scan rewrites it), the others intact.
        let changed = try bed.makeFile("v2/clip1.bin", size: 5_000)
        try await bed.upload(changed, to: "/Clips/day1")
        let again = try await bed.run("late", ["get", "-R", "/Clips", "-o", "copy", "--json"])
        #expect(again.process.terminationStatus == 0, "\(again.stderr)")
        #expect(try sameContents(changed, bed.home("late") + "/copy/day1/clip1.bin"))
        #expect(try sameContents(try #require(small["day1/a/clip0.bin"]), bed.home("late") + "/copy/day1/a/clip0.bin"))
        #expect(try sameContents(large, bed.home("late") + "/copy/large.bin"))
    }

    /// `put -R` publishes its folder's bundle itself (small files go up with one PUT each, no sidecar or swarm of
    /// their own) and serves it with --seed; a folder put without a signaling server has none, and the first `get -R`
    /// publishes it, so the next reader takes the small files through the bundle.
    @Test func putAndTheFirstGetPublishTheFoldersBundle() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let folder = bed.home("author") + "/Build"
        try FileManager.default.createDirectory(atPath: folder + "/lib", withIntermediateDirectories: true)
        var small: [String: String] = [:]
        var smallBytes = 0
        for index in 0..<40 {
            let size = 1 + (index * 6_151) % (200 << 10)
            let relative = (index % 2 == 0 ? "lib/" : "") + "part\(index).o"
            let made = try bed.makeFile("part\(index).o", size: size)
            try FileManager.default.copyItem(atPath: made, toPath: folder + "/" + relative)
            small[relative] = made
            smallBytes += size
        }
        let large = try bed.makeFile("app.tar", size: 1 << 20)
        try FileManager.default.copyItem(atPath: large, toPath: folder + "/app.tar")

        let put = try bed.start("author", ["put", "-R", "Build", "/", "--seed", "--json"])
        try await waitUntil("put to publish and serve the bundle: \(put.output) \(put.stderr)", timeout: 240) {
            put.jsonLines.contains { $0["event"] as? String == "bundle" && !($0["swarm"] is NSNull) }
        }
        let bundle = try #require(put.jsonLines.first { $0["event"] as? String == "bundle" })
        #expect(bundle["files"] as? Int == 40, "\(bundle)")
        #expect(bundle["path"] as? String == "/Build")
        let uploaded = put.jsonLines.filter { $0["event"] as? String == "file-done" }
        #expect(uploaded.count == 41)
        // Only the large file has a swarm (and a sidecar) of its own.
        #expect(uploaded.filter { !($0["swarm"] is NSNull) }.map { $0["path"] as? String } == ["/Build/app.tar"])

        let get = try await bed.run("reader", ["get", "-R", "/Build", "-o", "copy", "--json"])
        #expect(get.process.terminationStatus == 0, "\(get.stderr) \(put.stderr.suffix(3000))")
        let done = get.jsonLines.filter { $0["event"] as? String == "file-done" }
        let bundled = done.filter { ($0["path"] as? String)?.hasSuffix("app.tar") == false }
        #expect(bundled.count == 40)
        #expect(
            bundled.reduce(Int64(0)) { $0 + int64($1["bytesFromPeers"]) } == Int64(smallBytes),
            "\(get.jsonLines.filter { $0["event"] as? String == "note" })")
        for (relative, original) in small {
            #expect(try sameContents(original, bed.home("reader") + "/copy/" + relative), "\(relative)")
        }
        #expect(try sameContents(large, bed.home("reader") + "/copy/app.tar"))
        put.signal(SIGTERM)
        _ = await put.wait()

        // A folder put without a signaling server has no bundle: the first reader fetches file by file and publishes
        // one; the next reader's small files come through it (from the server as web seed: nobody serves it).
        let plain = try await bed.run("author", ["put", "-R", "Build", "/Plain", "--json"], signal: false)
        #expect(plain.process.terminationStatus == 0, "\(plain.stderr)")
        #expect(!plain.jsonLines.contains { $0["event"] as? String == "bundle" })
        let first = try await bed.run("first", ["get", "-R", "/Plain/Build", "-o", "copy", "--json"])
        #expect(first.process.terminationStatus == 0, "\(first.stderr)")
        let published = try #require(
            first.jsonLines.first { $0["event"] as? String == "bundle" }, "\(first.stderr.suffix(3000))")
        #expect(published["files"] as? Int == 40)
        #expect(published["written"] as? Bool == true)
        let next = try await bed.run("next", ["get", "-R", "/Plain/Build", "-o", "copy", "--json"])
        #expect(next.process.terminationStatus == 0, "\(next.stderr)")
        let nextDone = next.jsonLines.filter { $0["event"] as? String == "file-done" }
        let throughBundle = nextDone.filter { ($0["notes"] as? [String] ?? []).contains { $0.contains("bundle") } }
        #expect(throughBundle.count == 40, "\(next.jsonLines.filter { $0["event"] as? String == "note" })")
        #expect(!next.jsonLines.contains { $0["event"] as? String == "bundle" && $0["written"] as? Bool == true })
        for (relative, original) in small {
            #expect(try sameContents(original, bed.home("next") + "/copy/" + relative), "\(relative)")
        }
        // The uploader's store recorded each small file as the server version its PUT made: seeding the folder
        // compares nothing with the server, and it serves the bundle the first reader published.
        let gets = requests(try await bed.cloudStats(), "GET")
        let seeder = try bed.start("author", ["seed", "Build", "--remote", "/Plain/Build", "--json"])
        try await waitUntil("the uploader to seed its 41 files: \(seeder.stderr)", timeout: 120) {
            seeder.jsonLines.filter { $0["event"] as? String == "seeding" }.count >= 41
        }
        let seeding = seeder.jsonLines.filter { $0["event"] as? String == "seeding" }
        let smallSeeding = seeding.filter { $0["path"] as? String != "app.tar" }
        #expect(smallSeeding.count == 40)
        #expect(smallSeeding.allSatisfy { $0["basis"] as? String == "upload" }, "\(seeding)")
        #expect(Set(seeding.compactMap { $0["swarm"] as? String }).count == 2)
        // Sidecars and the bundle manifest, not file bodies: fewer GETs than files.
        #expect(requests(try await bed.cloudStats(), "GET") - gets < 20)
        seeder.signal(SIGTERM)
        _ = await seeder.wait()
    }

    /// Two seeders that each hold half of a folder's small files converge on one bundle listing all of them, and each
    /// serves its half: a reader takes every small byte from the two of them.
    @Test func twoSeedersWithHalfTheFilesEachServeOneBundle() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let folder = bed.home("author") + "/Share"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var files: [String: String] = [:]
        var total = 0
        for index in 0..<12 {
            let size = 4_000 + index * 9_001
            let made = try bed.makeFile("f\(index).bin", size: size)
            try FileManager.default.copyItem(atPath: made, toPath: folder + "/f\(index).bin")
            files["f\(index).bin"] = made
            total += size
        }
        let put = try await bed.run("author", ["put", "-R", "Share", "/", "--json"], signal: false)
        #expect(put.process.terminationStatus == 0, "\(put.stderr)")
        for (name, half) in [("one", 0..<6), ("two", 6..<12)] {
            try FileManager.default.createDirectory(
                atPath: bed.home(name) + "/Share", withIntermediateDirectories: true)
            for index in half {
                try FileManager.default.copyItem(
                    atPath: try #require(files["f\(index).bin"]), toPath: bed.home(name) + "/Share/f\(index).bin")
            }
        }
        let one = try bed.start("one", ["seed", "Share", "--remote", "/Share", "--rescan", "1", "--json"])
        try await waitUntil("the first seeder to seed its 6 files: \(one.stderr)", timeout: 120) {
            one.jsonLines.filter { $0["event"] as? String == "seeding" }.count >= 6
        }
        let two = try bed.start("two", ["seed", "Share", "--remote", "/Share", "--rescan", "1", "--json"])
        try await waitUntil("the second seeder to seed its 6 files: \(two.stderr)", timeout: 120) {
            two.jsonLines.filter { $0["event"] as? String == "seeding" }.count >= 6
        }
        // The second seeder's bundle lists all 12 files; the first moves to it at a later scan.
        let bundleSwarm = try #require(
            two.jsonLines.last { $0["event"] as? String == "seeding" }?["swarm"] as? String)
        try await waitUntil("the first seeder to serve the bundle of 12: \(one.output)", timeout: 120) {
            one.jsonLines.contains { $0["event"] as? String == "seeding" && $0["swarm"] as? String == bundleSwarm }
        }
        let get = try await bed.run("reader", ["get", "-R", "/Share", "-o", "copy", "--json"])
        #expect(get.process.terminationStatus == 0, "\(get.stderr)")
        let done = get.jsonLines.filter { $0["event"] as? String == "file-done" }
        #expect(done.count == 12)
        #expect(
            done.reduce(Int64(0)) { $0 + int64($1["bytesFromPeers"]) } == Int64(total),
            "\(get.jsonLines.filter { $0["event"] as? String == "note" }) \(one.stderr.suffix(2000))")
        #expect(done.allSatisfy { int64($0["peersUsed"]) >= 1 })
        for (name, original) in files {
            #expect(try sameContents(original, bed.home("reader") + "/copy/" + name), "\(name)")
        }
        // Neither seeder rewrote the bundle after the second one's: both still serve its swarm.
        #expect(
            one.jsonLines.last { $0["event"] as? String == "seeding" }?["swarm"] as? String == bundleSwarm)
        one.signal(SIGTERM)
        two.signal(SIGTERM)
        _ = await one.wait()
        _ = await two.wait()
    }
}

private func requests(_ stats: [String: Any], _ method: String) -> Int64 {
    ((stats["requestsByMethod"] as? [String: Any])?[method] as? NSNumber)?.int64Value ?? 0
}
