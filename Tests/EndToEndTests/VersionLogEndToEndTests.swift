import Foundation
import Testing
import VersionLog

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The version log end to end, every part a real process (issue 16): DevCloud, three signaling servers in
/// federated mode (A holds the log, with its own Nextcloud account for enrollments; B and C witness it), and
/// `harp-cli` as alice, bob and carol. No operator enrolls anyone: each device enrolls through a Nextcloud share the
/// first time it appends.
@Suite("Version log end to end")
struct VersionLogEndToEndTests {
    /// Starts `harp-cli signal serve`; returns the process and its http:// base.
    static func serve(
        _ name: String, data: String, in bed: Testbed, _ extra: [String], environment: [String: String] = [:]
    ) async throws -> (LaunchedProcess, String) {
        let server = try LaunchedProcess(
            name: name, arguments: ["signal", "serve", "--listen", "127.0.0.1:0", "--data", data] + extra,
            environment: Testbed.baseEnvironment.merging(environment) { _, new in new }, directory: bed.directory)
        guard let url = await server.waitForLine(timeout: 60, { $0.hasPrefix("ws://") }) else {
            server.signal(SIGKILL)
            throw TestbedError("\(name) did not start: \(server.stderr)")
        }
        return (
            server, url.replacingOccurrences(of: "ws://", with: "http://").replacingOccurrences(of: "/v1/ws", with: "")
        )
    }

    /// Runs `harp-cli` to the end without blocking a thread of the cooperative pool (the other tests run on it).
    static func harp(
        _ bed: Testbed, _ arguments: [String]
    ) async throws -> (status: Int32, stdout: String, stderr: String) {
        let process = try LaunchedProcess(
            name: "harp-\(UUID().uuidString.prefix(8))", arguments: arguments, environment: Testbed.baseEnvironment,
            directory: bed.directory)
        let status = await process.wait(timeout: 120)
        return (status, process.output.joined(separator: "\n"), process.stderr)
    }

    static func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// An HTTP request to DevCloud as `user` (Basic auth with the testbed's passwords).
    static func cloud(
        _ bed: Testbed, _ method: String, _ path: String, user: String, password: String? = nil, body: Data? = nil,
        ocs: Bool = false
    ) async throws -> (Int, Data) {
        var request = URLRequest(url: try #require(URL(string: bed.cloudURL + path)))
        request.httpMethod = method
        request.httpBody = body
        request.setValue(
            "Basic " + Data("\(user):\(password ?? user + "-pw")".utf8).base64EncodedString(),
            forHTTPHeaderField: "Authorization")
        if ocs { request.setValue("true", forHTTPHeaderField: "OCS-APIRequest") }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? -1, data)
    }

    @Test func threeFederatedServersWitnessAHistoryOfPutsAndAnObservedWebDAVWrite() async throws {
        let bed = try await Testbed(cloudArguments: [
            "--user", "carol:carol-pw", "--user", "harp-signal:signal-pw", "--share", "alice:/Footage:bob:1",
        ])
        defer { bed.shutdown() }
        var keys: [(log: String, witness: String)] = []
        for name in ["a", "b", "c"] {
            let run = try await Self.harp(bed, ["signal", "keys", "--data", bed.directory + "/" + name])
            let words = run.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            guard run.status == 0, words.count == 2, words.allSatisfy({ $0.count == 2 }) else {
                throw TestbedError("signal keys: \(run.stderr)")
            }
            keys.append((words[0][1], words[1][1]))
        }
        let (a, b, c) = (keys[0], keys[1], keys[2])

        // B and C witness A (and list each other); nothing appends to their own logs, so their listed URLs for the
        // others are never used but A's.
        try Self.write(
            "server http://127.0.0.1:1 \(a.log) \(a.witness)\nserver http://127.0.0.1:1 \(c.log) \(c.witness)\n",
            to: bed.directory + "/b.federation")
        try Self.write(
            "server http://127.0.0.1:1 \(a.log) \(a.witness)\nserver http://127.0.0.1:1 \(b.log) \(b.witness)\n",
            to: bed.directory + "/c.federation")
        let (serverB, urlB) = try await Self.serve(
            "signal-b", data: bed.directory + "/b", in: bed, ["--federation", bed.directory + "/b.federation"])
        defer { serverB.signal(SIGKILL) }
        let (serverC, urlC) = try await Self.serve(
            "signal-c", data: bed.directory + "/c", in: bed, ["--federation", bed.directory + "/c.federation"])
        defer { serverC.signal(SIGKILL) }
        // A publishes a checkpoint once one witness cosigned it (it asks both, and waits for both answers).
        try Self.write(
            "server \(urlB) \(b.log) \(b.witness)\nserver \(urlC) \(c.log) \(c.witness)\n",
            to: bed.directory + "/a.federation")
        let (serverA, urlA) = try await Self.serve(
            "signal-a", data: bed.directory + "/a", in: bed,
            ["--federation", bed.directory + "/a.federation", "--witness-quorum", "1", "--nextcloud", bed.cloudURL],
            environment: ["HARP_SIGNAL_NC_USER": "harp-signal", "HARP_SIGNAL_NC_APP_PASSWORD": "signal-pw"])
        defer { serverA.signal(SIGKILL) }
        let signal = ["--signal", urlA.replacingOccurrences(of: "http://", with: "ws://") + "/v1/ws"]

        // alice puts three versions; her device enrolls by itself on the first.
        for version in 1...3 {
            let local = try bed.makeFile("v\(version)/clip.bin", size: 20_000 + version)
            let put = try await bed.run("alice", ["put", local, "/Footage", "--json"] + signal, signal: false)
            #expect(put.process.terminationStatus == 0, "\(put.stderr)")
            let logged = fileDone(put)?["versionLog"] as? [String: Any]
            #expect(logged?["result"] as? String == "appended", "\(put.output)")
            #expect(int64(logged?["version"]) == Int64(version))
        }
        // The enrollment left nothing behind: no file in alice's home, no share with the server's account.
        let aliceHarp = bed.directory + "/cloud/files/alice/.harp"
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: aliceHarp)) ?? []
        #expect(leftovers.allSatisfy { !$0.hasPrefix("enroll-") }, "\(leftovers)")
        let (status, shares) = try await Self.cloud(
            bed, "GET", "/ocs/v2.php/apps/files_sharing/api/v1/shares?shared_with_me=true&format=json",
            user: "harp-signal", password: "signal-pw", ocs: true)
        #expect(status == 200)
        #expect(String(decoding: shares, as: UTF8.self).contains("\"data\":[]"))

        // A fourth version written through WebDAV directly, not by harp: bob's get observes it.
        let (written, _) = try await Self.cloud(
            bed, "PUT", "/remote.php/dav/files/alice/Footage/clip.bin", user: "alice", body: Data(count: 30_000))
        #expect(written == 204)
        let get = try await bed.run(
            "bob", ["get", "/Footage/clip.bin", "-o", bed.directory + "/bob.bin", "--json", "--linger", "0"] + signal,
            user: "bob", signal: false)
        #expect(get.process.terminationStatus == 0, "\(get.stderr)")
        let observed = get.jsonLines.first { $0["event"] as? String == "version-log" }
        #expect(observed?["result"] as? String == "appended", "\(get.output)")
        #expect(int64(observed?["version"]) == 4)
        // Fetching it again finds it known: nothing more is appended.
        let again = try await bed.run(
            "bob", ["get", "/Footage/clip.bin", "-o", bed.directory + "/bob2.bin", "--json", "--linger", "0"] + signal,
            user: "bob", signal: false)
        #expect(again.jsonLines.first { $0["event"] as? String == "version-log" }?["result"] as? String == "known")

        // bob's proof verifies offline under a 2-of-2 witness policy.
        let twoOfTwo = bed.directory + "/two-of-two.policy"
        let oneOfTwo = bed.directory + "/one-of-two.policy"
        let witnesses = "log \(a.log)\nwitness b \(b.witness)\nwitness c \(c.witness)\n"
        try Self.write(witnesses + "quorum 2\n", to: twoOfTwo)
        try Self.write(witnesses + "quorum 1\n", to: oneOfTwo)
        let bundle = bed.directory + "/clip.proof.json"
        try await proof(bed, signal, bundle: bundle, versions: 4)
        let verified = try await Self.harp(bed, ["verify-proof", bundle, "--policy", twoOfTwo])
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(verified.stdout.contains("1  create  alice"))
        #expect(verified.stdout.contains("3  modify  alice"))
        #expect(verified.stdout.contains("4  observed  bob"))

        // C stops: a fifth version is cosigned by B alone, which a 2-of-2 policy refuses and a 1-of-2 accepts.
        serverC.signal(SIGKILL)
        await serverC.wait(timeout: 30)
        let local = try bed.makeFile("v5/clip.bin", size: 25_000)
        let put = try await bed.run("alice", ["put", local, "/Footage", "--json"] + signal, signal: false)
        #expect((fileDone(put)?["versionLog"] as? [String: Any])?["result"] as? String == "appended")
        try await proof(bed, signal, bundle: bundle, versions: 5)
        let underWitnessed = try await Self.harp(bed, ["verify-proof", bundle, "--policy", twoOfTwo])
        #expect(underWitnessed.status == 6, "\(underWitnessed.stdout)")
        let oneWitness = try await Self.harp(bed, ["verify-proof", bundle, "--policy", oneOfTwo])
        #expect(oneWitness.status == 0, "\(oneWitness.stderr)")
        #expect(oneWitness.stdout.contains("5  modify  alice"))

        // bob revokes his device; his next append enrolls it again by itself (both are entries of the log).
        let revoke = try await bed.run("bob", ["device", "revoke"] + signal, user: "bob", signal: false)
        #expect(revoke.process.terminationStatus == 0, "\(revoke.stderr)")
        #expect(revoke.output.first?.hasPrefix("revoked device") == true, "\(revoke.output)")
        let (rewritten, _) = try await Self.cloud(
            bed, "PUT", "/remote.php/dav/files/alice/Footage/clip.bin", user: "alice", body: Data(count: 31_000))
        #expect(rewritten == 204)
        let afterRevoke = try await bed.run(
            "bob", ["get", "/Footage/clip.bin", "-o", bed.directory + "/bob3.bin", "--json", "--linger", "0"] + signal,
            user: "bob", signal: false)
        let reenrolled = afterRevoke.jsonLines.first { $0["event"] as? String == "version-log" }
        #expect(reenrolled?["result"] as? String == "appended", "\(afterRevoke.output)")
        #expect(int64(reenrolled?["version"]) == 6)
        try await proof(bed, signal, bundle: bundle, versions: 6)
        let bundleData = try #require(FileManager.default.contents(atPath: bundle))
        let actions = try ProofBundle(json: Array(bundleData)).enrollments.compactMap { proven -> String? in
            guard case .enrollment(let entry) = try LogEntry(encoded: proven.entry), entry.user == "bob" else {
                return nil
            }
            return entry.action == .enroll ? "enroll" : "revoke"
        }
        #expect(actions == ["enroll", "revoke", "enroll"])
        let reverified = try await Self.harp(bed, ["verify-proof", bundle, "--policy", oneOfTwo])
        #expect(reverified.status == 0, "\(reverified.stderr)")

        // carol, without access, gets nothing: neither the file nor a proof.
        let carolBundle = bed.directory + "/carol.proof.json"
        let carolProof = try await bed.run(
            "carol", ["proof", "/Footage/clip.bin", "-o", carolBundle] + signal, user: "carol", signal: false)
        let carolGet = try await bed.run(
            "carol", ["get", "/Footage/clip.bin", "-o", bed.directory + "/carol.bin"] + signal, user: "carol",
            signal: false)
        #expect(carolProof.process.terminationStatus == 4)
        #expect(carolGet.process.terminationStatus == 4)
        #expect(!FileManager.default.fileExists(atPath: carolBundle))
        #expect(!FileManager.default.fileExists(atPath: bed.directory + "/carol.bin"))
    }

    @Test func seedObservesAVersionWrittenOutsideHarpAndALogThatRefusesNeverFailsATransfer() async throws {
        let bed = try await Testbed(cloudArguments: ["--user", "harp-signal:signal-pw"])
        defer { bed.shutdown() }
        // A budget of 20 requests, one more a second: the first append (a head, a refused append, a challenge and an
        // enrollment counting ten each, the append again) runs into the rate limit and waits it out.
        let (server, url) = try await Self.serve(
            "signal-log", data: bed.directory + "/log", in: bed,
            ["--nextcloud", bed.cloudURL, "--log-requests-per-second", "1"],
            environment: ["HARP_SIGNAL_NC_USER": "harp-signal", "HARP_SIGNAL_NC_APP_PASSWORD": "signal-pw"])
        defer { server.signal(SIGKILL) }
        let signal = ["--signal", url.replacingOccurrences(of: "http://", with: "ws://") + "/v1/ws"]

        // A file written through WebDAV alone, and the same bytes in a local folder: seed vouches for them and
        // records the version it met as observed (enrolling alice's device first).
        let local = try bed.makeFile("Seeded/a.bin", size: 12_000)
        #expect(try await Self.cloud(bed, "MKCOL", "/remote.php/dav/files/alice/Seeded", user: "alice").0 == 201)
        let bytes = try #require(FileManager.default.contents(atPath: local))
        #expect(
            try await Self.cloud(bed, "PUT", "/remote.php/dav/files/alice/Seeded/a.bin", user: "alice", body: bytes).0
                == 201)
        let seed = try bed.start(
            "alice", ["seed", bed.directory + "/Seeded", "--remote", "/Seeded", "--json"] + signal, signal: false)
        let line = await seed.waitForLine(timeout: 60) { $0.contains("\"version-log\"") }
        seed.signal(SIGINT)
        await seed.wait(timeout: 60)
        let event = try #require(
            line.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: Any])
        #expect(event["result"] as? String == "appended", "\(seed.output) \(seed.stderr)")
        #expect(int64(event["version"]) == 1)

        // The testbed's own signaling server has no Nextcloud account: the device cannot enroll there, the append is
        // refused, and put warns and succeeds all the same.
        let file = try bed.makeFile("b.bin", size: 5000)
        let put = try await bed.run("bob", ["put", file, "/", "--json"], user: "bob")
        #expect(put.process.terminationStatus == 0, "\(put.stderr)")
        let logged = fileDone(put)?["versionLog"] as? [String: Any]
        #expect(logged?["result"] as? String == "failed", "\(put.output)")
        #expect((logged?["warning"] as? String)?.contains("operator enrolls devices") == true, "\(put.output)")
        let quiet = try await bed.run("bob", ["put", file, "/"], user: "bob")
        #expect(quiet.process.terminationStatus == 0)
        #expect(quiet.stderr.contains("not recorded in the version log"), "\(quiet.stderr)")
    }

    @Test func serveWithNextcloudButNoAccountRefusesToStart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("harp-nc-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try LaunchedProcess(
            name: "serve",
            arguments: [
                "signal", "serve", "--listen", "127.0.0.1:0", "--data", directory + "/data", "--nextcloud",
                "http://127.0.0.1:1",
            ], environment: Testbed.baseEnvironment, directory: directory)
        #expect(await server.wait(timeout: 60) == 2)
        #expect(server.stderr.contains("HARP_SIGNAL_NC_USER"), "\(server.stderr)")
    }

    /// Runs bob's `proof` until its bundle holds `versions` versions (they are published a moment after the append).
    func proof(_ bed: Testbed, _ signal: [String], bundle: String, versions: Int) async throws {
        try await waitUntil("a proof with \(versions) versions", timeout: 30) {
            let run = try await bed.run(
                "bob", ["proof", "/Footage/clip.bin", "-o", bundle] + signal, user: "bob", signal: false)
            guard run.process.terminationStatus == 0, let data = FileManager.default.contents(atPath: bundle) else {
                return false
            }
            return (try? ProofBundle(json: Array(data)))?.entries.count == versions
        }
    }
}
