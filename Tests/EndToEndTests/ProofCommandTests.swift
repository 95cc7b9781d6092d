import ChunkStore
import Crypto
import Foundation
import Testing
import VersionLog

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `harp-cli proof` against DevCloud and a federated log (a log server and one witness server, real processes).
@Suite("harp-cli proof")
struct ProofCommandTests {
    /// Starts `harp-cli signal serve` on a data directory; returns the process and its ws:// URL.
    static func serve(
        _ name: String, data: String, in directory: String, _ extra: [String] = []
    ) async throws
        -> (LaunchedProcess, String)
    {
        let server = try LaunchedProcess(
            name: name, arguments: ["signal", "serve", "--listen", "127.0.0.1:0", "--data", data] + extra,
            environment: Testbed.baseEnvironment, directory: directory)
        guard let url = await server.waitForLine(timeout: 60, { $0.hasPrefix("ws://") }) else {
            server.signal(SIGKILL)
            throw TestbedError("\(name) did not start: \(server.stderr)")
        }
        return (server, url)
    }

    static func keys(_ data: String) throws -> (log: String, witness: String) {
        let run = try CommandLineTests().run(["signal", "keys", "--data", data])
        let lines = run.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        guard run.status == 0, lines.count == 2 else { throw TestbedError("signal keys: \(run.stderr)") }
        return (lines[0][1], lines[1][1])
    }

    @Test func aReaderGetsAProofThatVerifiesAndAUserWithoutAccessGetsTheRefusalOfGet() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        let file = try bed.makeFile("report.bin", size: 10_000)
        try await bed.upload(file)
        let listing = try await bed.run("alice-ls", ["ls", "/report.bin", "--json"], signal: false)
        let item = try #require(listing.jsonLines.first)
        let fileID = try #require((item["fileid"] as? NSNumber)?.int64Value)

        // A log server and its witness; alice's test device enrolled by the operator before the log starts.
        let logData = bed.directory + "/log"
        let witnessData = bed.directory + "/witness"
        let logKeys = try Self.keys(logData)
        let witnessKeys = try Self.keys(witnessData)
        let federation = bed.directory + "/witness.federation"
        try Data("server http://127.0.0.1:1 \(logKeys.log) \(logKeys.witness)\n".utf8)
            .write(to: URL(fileURLWithPath: federation))
        let (witness, witnessURL) = try await Self.serve(
            "witness", data: witnessData, in: bed.directory, ["--federation", federation, "--witness-quorum", "0"])
        defer { witness.signal(SIGTERM) }
        let device = Curve25519.Signing.PrivateKey()
        let enroll = try CommandLineTests().run([
            "signal", "enroll", "--data", logData, "--user", "alice", "--device",
            DeviceKey(device.publicKey).description,
        ])
        #expect(enroll.status == 0)
        let logFederation = bed.directory + "/log.federation"
        let witnessBase = witnessURL.replacingOccurrences(of: "ws://", with: "http://")
            .replacingOccurrences(of: "/v1/ws", with: "")
        try Data("server \(witnessBase) \(witnessKeys.log) \(witnessKeys.witness)\n".utf8)
            .write(to: URL(fileURLWithPath: logFederation))
        let (log, logURL) = try await Self.serve(
            "log", data: logData, in: bed.directory, ["--federation", logFederation])
        defer { log.signal(SIGTERM) }
        let logBase = logURL.replacingOccurrences(of: "ws://", with: "http://").replacingOccurrences(
            of: "/v1/ws", with: "")

        // Three versions of the file's lineage, as `put` will append them.
        var instance = bed.cloudURL
        while instance.hasSuffix("/") { instance.removeLast() }
        let lineage = VersionEntry.lineage(instance: instance, fileID: "\(fileID)")
        var head: VersionEntry?
        for size in 1...3 {
            let entry = try VersionEntry.signed(
                lineage: lineage, previous: head, operation: head == nil ? .create : .modify,
                contentRoot: Hash256.sha256([UInt8(size)]), size: UInt64(size), etag: "e\(size)", authorUser: "alice",
                time: Int64(Date().timeIntervalSince1970), device: device)
            var request = URLRequest(url: try #require(URL(string: logBase + "/v1/log/append")))
            request.httpMethod = "POST"
            request.httpBody = Data((head?.chainHash ?? .zero).bytes + LogEntry.version(entry).encoded)
            let (_, response) = try await URLSession.shared.data(for: request)
            #expect((response as? HTTPURLResponse)?.statusCode == 200)
            head = entry
        }

        // alice may read the file: her proof holds the three versions once they are published.
        let bundle = bed.directory + "/report.proof.json"
        var proof: LaunchedProcess?
        try await waitUntil("a proof with three versions", timeout: 30) {
            let run = try await bed.run(
                "alice", ["proof", "/report.bin", "-o", bundle, "--signal", logURL], signal: false)
            proof = run
            guard run.process.terminationStatus == 0, let data = FileManager.default.contents(atPath: bundle) else {
                return false
            }
            return (try? ProofBundle(json: Array(data)))?.entries.count == 3
        }
        #expect(proof?.process.terminationStatus == 0)
        let policy = bed.directory + "/policy"
        try Data("log \(logKeys.log)\nwitness w \(witnessKeys.witness)\nquorum 1\n".utf8)
            .write(to: URL(fileURLWithPath: policy))
        let verified = try CommandLineTests().run(["verify-proof", bundle, "--policy", policy])
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(verified.stdout.contains("3  modify  alice"))

        // bob may not read it: proof refuses as get does, and writes nothing.
        let bobBundle = bed.directory + "/bob.proof.json"
        let bobProof = try await bed.run(
            "bob", ["proof", "/report.bin", "-o", bobBundle, "--signal", logURL], user: "bob", signal: false)
        let bobGet = try await bed.run(
            "bob", ["get", "/report.bin", "-o", bed.directory + "/bob.bin"], user: "bob", signal: false)
        #expect(bobProof.process.terminationStatus == 4)
        #expect(bobProof.process.terminationStatus == bobGet.process.terminationStatus)
        #expect(!FileManager.default.fileExists(atPath: bobBundle))
    }

    /// A signaling server that answers the proof request with an endless chunked body (128 MiB written): `proof` must
    /// stop at the bundle bound (32 MiB) with an error, write nothing, and the server must see the connection closed
    /// before it wrote everything.
    @Test func anEndlessBundleIsCutOffAtTheBound() async throws {
        let bed = try await Testbed()
        defer { bed.shutdown() }
        try await bed.upload(try bed.makeFile("endless.bin", size: 1000))
        let script = bed.directory + "/endless.py"
        let outcome = bed.directory + "/endless.outcome"
        try Data(Self.endlessServer.utf8).write(to: URL(fileURLWithPath: script))
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", script, outcome]
        let out = Pipe()
        server.standardOutput = out
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { if server.isRunning { server.terminate() } }
        // The script prints its port once it listens (an empty line if python3 is missing).
        var line = Data()
        while let byte = try out.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
            line.append(byte)
        }
        let port = try #require(Int(String(decoding: line, as: UTF8.self)), "the endless server did not start")

        let bundle = bed.directory + "/endless.proof.json"
        let proof = try await bed.run(
            "alice-endless", ["proof", "/endless.bin", "-o", bundle, "--signal", "ws://127.0.0.1:\(port)/v1/ws"],
            signal: false)
        #expect(proof.process.terminationStatus != 0)
        #expect(proof.stderr.contains("over \(32 << 20) bytes"), "\(proof.stderr)")
        #expect(!FileManager.default.fileExists(atPath: bundle))
        try await waitUntil("the endless server's outcome", timeout: 60) { !server.isRunning }
        let written = String(decoding: FileManager.default.contents(atPath: outcome) ?? Data(), as: UTF8.self)
        #expect(written.hasPrefix("closed "), "the server wrote all 128 MiB: proof read on past its bound (\(written))")
    }

    /// `python3 endless.py OUTCOME`: one connection; after the request, a chunked 200 of 2,048 chunks of 64 KiB; writes
    /// `closed N` (the client hung up after N bytes) or `complete N` to OUTCOME.
    static let endlessServer = """
        import socket, sys
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        print(listener.getsockname()[1], flush=True)
        connection, _ = listener.accept()
        request = b""
        while b"\\r\\n\\r\\n" not in request:
            data = connection.recv(65536)
            if not data:
                break
            request += data
        piece = b"10000\\r\\n" + b"a" * 65536 + b"\\r\\n"
        written = 0
        try:
            connection.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\n")
            connection.sendall(b"Transfer-Encoding: chunked\\r\\n\\r\\n")
            for _ in range(2048):
                connection.sendall(piece)
                written += len(piece)
            result = "complete %d" % written
        except OSError:
            result = "closed %d" % written
        with open(sys.argv[1], "w") as f:
            f.write(result)
        connection.close()
        """
}
