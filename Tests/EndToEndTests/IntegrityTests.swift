import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A fetched file is the server's file (DESIGN §4, "Provenance" and "Sampling"), end to end with real processes:
/// copies that differ from the server are never published or served as its file, and a sidecar that lies is caught
/// before anything is renamed into place.
@Suite("Integrity (real processes)", .serialized)
struct IntegrityTests {
    /// A copy of `original` in peer `name`'s folder `folder`, with `edit` applied to its bytes.
    func copy(
        _ bed: Testbed, _ original: String, to name: String, folder: String = "team",
        edit: (inout [UInt8]) -> Void = { _ in }
    ) throws -> String {
        let directory = bed.home(name) + "/" + folder
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: original)))
        edit(&bytes)
        let path = directory + "/" + (original as NSString).lastPathComponent
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Fourteen bytes changed in the middle: the edit that one random chunk (or a 64-sample comparison) misses.
    static func fewBytes(_ bytes: inout [UInt8]) {
        for offset in 0..<14 { bytes[bytes.count / 2 + offset * 7] ^= 0x5A }
    }

    /// The second half rewritten: another version, or bulk corruption.
    static func secondHalf(_ bytes: inout [UInt8]) {
        for offset in stride(from: bytes.count / 2, to: bytes.count, by: 1) { bytes[offset] ^= 0xA5 }
    }

    /// Waits for a `--json` line of `process` with `event` for `path`.
    func event(_ process: LaunchedProcess, _ event: String, path: String, timeout: Double = 120) async -> [String: Any]?
    {
        let line = await process.waitForLine(timeout: timeout) { line in
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                return false
            }
            return object["event"] as? String == event && object["path"] as? String == path
        }
        return line.flatMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
    }

    /// Issue 13's reproduction: an honest seeder published the sidecar; another device seeds a same-size copy with 14
    /// bytes changed. It must not take over the sidecar, and a third device gets the server's bytes.
    @Test func aSeederWithAModifiedCopyNeverReplacesTheSidecar() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let original = try bed.makeFile("f.bin", size: 24 << 20)
        try await bed.upload(original)
        let honest = try bed.start("honest", ["get", "/f.bin", "-o", "copy/", "--seed"])
        try #require(await honest.waitForLine(timeout: 180) { $0.hasPrefix("seeding") } != nil, "\(honest.stderr)")

        _ = try copy(bed, original, to: "editor", edit: Self.fewBytes)
        let editor = try bed.start("editor", ["seed", "team", "--remote", "/", "--rescan", "1", "--json"])
        let skipped = try #require(
            await event(editor, "skipped", path: "f.bin"), "no verdict on the edited copy: \(editor.output)")
        #expect((skipped["reason"] as? String ?? "").contains("differs"), "\(skipped)")
        #expect(!editor.output.contains { $0.contains("\"seeding\"") }, "the edited copy was seeded: \(editor.output)")

        let fetcher = try await bed.run("fetcher", ["get", "/f.bin", "-o", "copy/", "--json"])
        #expect(fetcher.process.terminationStatus == 0, "\(fetcher.stderr.suffix(2000))")
        #expect(try sameContents(original, bed.home("fetcher") + "/copy/f.bin"))
        let done = try #require(fileDone(fetcher))
        #expect(done["method"] as? String == "swarm", "\(done)")
        let check = try #require(done["check"] as? [String: Any], "no comparison with the server: \(done)")
        #expect(check["matches"] as? Bool == true && check["mode"] as? String == "samples", "\(check)")
        #expect(int64(check["bytes"]) == 64 * 4096 && int64(check["requests"]) == 64, "\(check)")
    }

    /// Without a sidecar, `seed` compares every byte before it publishes one: an edited copy is refused, an exact
    /// copy (say, from a sync client) is published and serves a fetcher.
    @Test func withoutASidecarSeedPublishesOnlyBytesItComparedWithTheServer() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let size = 16 << 20
        let original = try bed.makeFile("f.bin", size: size)
        try await bed.upload(original)

        _ = try copy(bed, original, to: "editor", edit: Self.fewBytes)
        let editor = try bed.start("editor", ["seed", "team", "--remote", "/", "--rescan", "1", "--json"])
        let skipped = try #require(await event(editor, "skipped", path: "f.bin"), "\(editor.output) \(editor.stderr)")
        #expect(skipped["reason"] as? String == "it differs from the server's file", "\(skipped)")

        _ = try copy(bed, original, to: "mirror")
        let before = try await bed.cloudBytesSent()
        let mirror = try bed.start("mirror", ["seed", "team", "--remote", "/", "--rescan", "1", "--json"])
        let seeding = try #require(await event(mirror, "seeding", path: "f.bin"), "\(mirror.output) \(mirror.stderr)")
        #expect(seeding["basis"] as? String == "comparison", "\(seeding)")
        let comparisonCost = try await bed.cloudBytesSent() - before
        #expect(comparisonCost >= Int64(size), "the mirror published without reading the server's bytes")

        let fetcher = try await bed.run("fetcher", ["get", "/f.bin", "-o", "copy/", "--json"])
        #expect(fetcher.process.terminationStatus == 0, "\(fetcher.stderr.suffix(2000))")
        #expect(try sameContents(original, bed.home("fetcher") + "/copy/f.bin"))
        let done = try #require(fileDone(fetcher))
        #expect(done["method"] as? String == "swarm" && int64(done["bytesFromPeers"]) > 0, "\(done)")
    }

    /// A writer publishes a sidecar for a copy whose second half differs, and seeds it. A fetcher's samples catch it
    /// before the rename; the fetcher takes the server's bytes, replaces the sidecar, and the liar's own seed notices.
    @Test func aLyingSidecarIsCaughtBeforeTheRenameAndReplaced() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let original = try bed.makeFile("f.bin", size: 8 << 20)
        try await bed.upload(original)
        let forged = try copy(bed, original, to: "liar", edit: Self.secondHalf)
        let publish = try await bed.run("liar", ["debug-publish-sidecar", forged, "/f.bin"])
        try #require(publish.process.terminationStatus == 0, "\(publish.stderr)")
        let liar = try bed.start("liar", ["seed", "team", "--remote", "/", "--rescan", "1", "--json"])
        let seeding = try #require(await event(liar, "seeding", path: "f.bin"), "\(liar.output) \(liar.stderr)")
        #expect(seeding["basis"] as? String == "sidecar")

        let fetcher = try await bed.run("fetcher", ["get", "/f.bin", "-o", "copy/", "--json"])
        #expect(fetcher.process.terminationStatus == 0, "\(fetcher.stderr.suffix(2000))")
        #expect(try sameContents(original, bed.home("fetcher") + "/copy/f.bin"))
        let done = try #require(fileDone(fetcher))
        let notes = (done["notes"] as? [String] ?? []).joined(separator: " | ")
        #expect(done["method"] as? String == "server", "\(done)")
        #expect(notes.contains("differs from the server's file"), "\(notes)")
        #expect(notes.contains("published the sidecar"), "\(notes)")
        // The liar's next scan finds a valid sidecar for other bytes than its copy's and stops.
        let stopped = try #require(await event(liar, "skipped", path: "f.bin"), "\(liar.output)")
        #expect((stopped["reason"] as? String ?? "").contains("differs"), "\(stopped)")
    }

    /// Fourteen changed bytes pass 64 samples almost always; `--verify-server` compares every byte and catches them.
    @Test func verifyServerCatchesAFewChangedBytes() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let size = 8 << 20
        let original = try bed.makeFile("f.bin", size: size)
        try await bed.upload(original)
        let forged = try copy(bed, original, to: "liar", edit: Self.fewBytes)
        let publish = try await bed.run("liar", ["debug-publish-sidecar", forged, "/f.bin"])
        try #require(publish.process.terminationStatus == 0, "\(publish.stderr)")
        let liar = try bed.start("liar", ["seed", "team", "--remote", "/", "--rescan", "1", "--json"])
        try #require(await event(liar, "seeding", path: "f.bin") != nil, "\(liar.output) \(liar.stderr)")

        let refused = try await bed.run("careful", ["get", "/f.bin", "-o", "copy/", "--json", "--verify-server"])
        #expect(refused.process.terminationStatus == 0, "\(refused.stderr.suffix(2000))")
        #expect(try sameContents(original, bed.home("careful") + "/copy/f.bin"))
        let done = try #require(fileDone(refused))
        #expect(done["method"] as? String == "server", "\(done)")
        #expect(((done["notes"] as? [String]) ?? []).contains { $0.contains("differs from the server's file") })
    }

    /// A file fetched from the server carries its provenance: `seed` of it publishes a sidecar without reading the
    /// server's bytes again.
    @Test func aDownloadedFileIsSeededWithoutAnotherComparison() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let size = 16 << 20
        let original = try bed.makeFile("f.bin", size: size)
        try await bed.upload(original)
        // No signaling server: the file comes from the server and no sidecar is published.
        let download = try await bed.run("owner", ["get", "/f.bin", "-o", "team/", "--json"], signal: false)
        try #require(download.process.terminationStatus == 0, "\(download.stderr)")
        let before = try await bed.cloudBytesSent()
        let seeder = try bed.start("owner", ["seed", "team", "--remote", "/", "--rescan", "1", "--json"])
        let seeding = try #require(await event(seeder, "seeding", path: "f.bin"), "\(seeder.output) \(seeder.stderr)")
        #expect(seeding["basis"] as? String == "download", "\(seeding)")
        let cost = try await bed.cloudBytesSent() - before
        #expect(cost < Int64(size / 8), "seed read \(cost) bytes of the server's file")
    }

    /// Access revoked later: a file that gains its own ACL rules stops being seeded at the next scan, and its sidecar
    /// is deleted.
    @Test func aFileThatGainsItsOwnAccessRulesStopsBeingSeeded() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let original = try bed.makeFile("f.bin", size: 4 << 20)
        try await bed.upload(original)
        let download = try await bed.run("owner", ["get", "/f.bin", "-o", "team/", "--json"], signal: false)
        try #require(download.process.terminationStatus == 0, "\(download.stderr)")
        let seeder = try bed.start("owner", ["seed", "team", "--remote", "/", "--rescan", "1", "--json"])
        try #require(await event(seeder, "seeding", path: "f.bin") != nil, "\(seeder.output) \(seeder.stderr)")
        let fileid = try #require(try await bed.fileID("/f.bin"))
        #expect(try await bed.davStatus("/.harp/\(fileid).harp") == 200)

        try await bed.setACL(
            "/f.bin", rules: [["mappingType": "user", "mappingId": "bob", "mask": 1, "permissions": 0]])
        let unseeded = try #require(await event(seeder, "unseeded", path: "f.bin"), "\(seeder.output)")
        #expect(unseeded["reason"] as? String == "the file gained its own access rules", "\(unseeded)")
        #expect(unseeded["sidecarDeleted"] as? Bool == true, "\(unseeded)")
        #expect(try await bed.davStatus("/.harp/\(fileid).harp") == 404)
        #expect(try await bed.davStatus("/.harp/\(fileid).hrpm") == 404)
    }

    /// Checksums the uploader claimed (`oc:checksums`) are compared after the download: a mismatch is a warning in the
    /// notes, matching ones say nothing.
    @Test func claimedChecksumsAreComparedAndAMismatchIsAWarning() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let body = Data((0..<4096).flatMap { _ in Array(0...255) as [UInt8] })
        try await bed.davPut(
            "/good.bin", body, checksum: "SHA1:ecfc8e86fdd83811f9cc9bf500993b63069923be ADLER32:46a47789")
        try await bed.davPut("/bad.bin", body, checksum: "MD5:9c677286866aad38f8e9b660f5411814")
        let fetcher = try await bed.run("fetcher", ["get", "/good.bin", "/bad.bin", "-o", "copy/", "--json"])
        #expect(fetcher.process.terminationStatus == 0, "\(fetcher.stderr.suffix(2000))")
        let notes =
            fetcher.jsonLines.filter { $0["event"] as? String == "file-done" }.reduce(into: [:]) {
                $0[$1["path"] as? String ?? ""] = ($1["notes"] as? [String] ?? []).filter { $0.hasPrefix("warning:") }
            } as [String: [String]]
        #expect(notes["/good.bin"] == [], "\(notes)")
        #expect(notes["/bad.bin"]?.count == 1 && notes["/bad.bin"]?.first?.contains("MD5") == true, "\(notes)")
    }
}

extension Testbed {
    private func request(_ method: String, _ path: String, user: String = "alice") -> URLRequest {
        var request = URLRequest(url: URL(string: cloudURL + "/remote.php/dav/files/\(user)" + path)!)
        request.httpMethod = method
        request.setValue(
            "Basic " + Data("\(user):\(user)-pw".utf8).base64EncodedString(), forHTTPHeaderField: "Authorization")
        return request
    }

    /// The HTTP status of a GET of `path` as `user`.
    func davStatus(_ path: String, user: String = "alice") async throws -> Int {
        let (_, response) = try await URLSession.shared.data(for: request("GET", path, user: user))
        return (response as? HTTPURLResponse)?.statusCode ?? -1
    }

    /// The fileid of `path` (from a Depth 0 PROPFIND).
    func fileID(_ path: String, user: String = "alice") async throws -> String? {
        var propfind = request("PROPFIND", path, user: user)
        propfind.setValue("0", forHTTPHeaderField: "Depth")
        propfind.httpBody = Data(
            #"<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><oc:fileid/></d:prop></d:propfind>"#
                .utf8)
        let (data, _) = try await URLSession.shared.data(for: propfind)
        let text = String(decoding: data, as: UTF8.self)
        guard let start = text.range(of: "<oc:fileid>"), let end = text.range(of: "</oc:fileid>") else { return nil }
        return String(text[start.upperBound..<end.lowerBound])
    }

    /// A plain WebDAV PUT with an `OC-Checksum` claim.
    func davPut(_ path: String, _ body: Data, checksum: String, user: String = "alice") async throws {
        var put = request("PUT", path, user: user)
        put.setValue(checksum, forHTTPHeaderField: "OC-Checksum")
        let (_, response) = try await URLSession.shared.upload(for: put, from: body)
        let status = (response as? HTTPURLResponse)?.statusCode ?? -1
        guard (200..<300).contains(status) else { throw TestbedError("PUT \(path) answered \(status)") }
    }

    /// Gives `alice`'s node at `path` Group Folders ACL rules of its own (DevCloud's admin surface).
    func setACL(_ path: String, rules: [[String: Any]]) async throws {
        var request = URLRequest(url: URL(string: cloudURL + "/harp-devcloud/acl")!)
        request.httpMethod = "POST"
        request.httpBody = try JSONSerialization.data(withJSONObject: ["owner": "alice", "path": path, "rules": rules])
        let (data, response) = try await URLSession.shared.data(for: request)
        guard (response as? HTTPURLResponse)?.statusCode == 200 else {
            throw TestbedError("setting the ACL failed: \(String(decoding: data, as: UTF8.self))")
        }
    }
}
