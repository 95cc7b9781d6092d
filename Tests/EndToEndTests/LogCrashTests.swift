import ChunkStore
import Crypto
import Foundation
import Testing
import VersionLog

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The version log of the real `harp-cli signal serve` process, killed with SIGKILL while a client appends.
@Suite("Version log crash")
struct LogCrashTests {
    struct Acknowledged {
        var entry: VersionEntry
        var leafIndex: Int
    }

    static func post(_ base: String, _ body: Data) async throws -> (Int, Data) {
        var request = URLRequest(url: try #require(URL(string: base + "/v1/log/append")))
        request.httpMethod = "POST"
        request.httpBody = body
        request.timeoutInterval = 10
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    static func startServer(_ directory: String) async throws -> (LaunchedProcess, String) {
        let server = try LaunchedProcess(
            name: "signal-\(UUID().uuidString.prefix(8))",
            arguments: [
                "signal", "serve", "--listen", "127.0.0.1:0", "--data", directory + "/signal",
                // Appends as fast as the loop goes: above the per-address rate limit of the version log.
                "--log-requests-per-second", "100000",
            ],
            environment: Testbed.baseEnvironment, directory: directory)
        guard let line = await server.waitForLine(timeout: 60, { $0.hasPrefix("ws://") }) else {
            server.signal(SIGKILL)
            throw TestbedError("the signaling server did not start: \(server.stderr)")
        }
        // ws://127.0.0.1:PORT/v1/ws
        let hostPort = line.dropFirst("ws://".count).split(separator: "/")[0]
        return (server, "http://\(hostPort)")
    }

    @Test func aKilledServerLosesAndReordersNoAcknowledgedEntry() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("harp-log-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let device = Curve25519.Signing.PrivateKey()
        let hex = DeviceKey(device.publicKey).description
        let enroll = try CommandLineTests().run([
            "signal", "enroll", "--data", directory + "/signal", "--user", "alice", "--device", hex,
        ])
        #expect(enroll.status == 0 && enroll.stdout == "0\n", "\(enroll.stderr)")
        let lineage = VersionEntry.lineage(instance: "https://cloud.test", fileID: "7")
        var acknowledged: [Acknowledged] = []
        var head: VersionEntry?
        var unacknowledged = 0
        for round in 0..<3 {
            let (server, base) = try await Self.startServer(directory)
            defer { server.signal(SIGKILL) }
            // Append in a loop; the server is killed from another task after a few acknowledgements, mid-loop.
            let killer = Task {
                try await Task.sleep(for: .milliseconds(300 + 200 * round))
                server.signal(SIGKILL)
            }
            while true {
                let entry = try VersionEntry.signed(
                    lineage: lineage, previous: head, operation: head == nil ? .create : .modify,
                    contentRoot: Hash256.sha256(Array("\(acknowledged.count)".utf8)), size: UInt64(acknowledged.count),
                    etag: "e", authorUser: "alice", time: Int64(Date().timeIntervalSince1970), device: device)
                let answer: (Int, Data)
                do {
                    answer = try await Self.post(
                        base, Data((head?.chainHash ?? .zero).bytes + LogEntry.version(entry).encoded))
                } catch {
                    break  // killed
                }
                let object = try JSONSerialization.jsonObject(with: answer.1) as? [String: Any]
                if answer.0 == 200, let index = object?["leafIndex"] as? Int {
                    acknowledged.append(Acknowledged(entry: entry, leafIndex: index))
                    head = entry
                } else if answer.0 == 409, let current = object?["head"] as? [String: Any],
                    let encoded = (current["entry"] as? String).flatMap({ Data(base64Encoded: $0) }),
                    case .version(let committed) = try LogEntry(encoded: Array(encoded))
                {
                    // The append in flight when the server died committed without an acknowledgement: go on after it.
                    head = committed
                    unacknowledged += 1
                } else {
                    Issue.record("unexpected answer \(answer.0): \(String(decoding: answer.1, as: UTF8.self))")
                    return
                }
            }
            _ = await killer.result
            await server.wait(timeout: 30)
        }
        #expect(acknowledged.count > 3, "too few appends to test anything")
        print(
            "LogCrashTests: \(acknowledged.count) acknowledged appends over 3 kills, \(unacknowledged) unacknowledged but committed"
        )
        // A last start: every acknowledged entry is at its leaf, in order, and the proof holds them.
        let (server, base) = try await Self.startServer(directory)
        defer { server.signal(SIGTERM) }
        var request = URLRequest(url: try #require(URL(string: base + "/v1/log/proof?lineage=\(lineage.hex)")))
        request.timeoutInterval = 10
        let bundleData = try await poll(timeout: 20) { () async throws -> Data? in
            let (data, response) = try await URLSession.shared.data(for: request)
            return (response as? HTTPURLResponse)?.statusCode == 200 ? data : nil
        }
        let bundle = try ProofBundle(json: Array(try #require(bundleData)))
        let stored = Dictionary(uniqueKeysWithValues: bundle.entries.map { (Int($0.leafIndex), $0.entry) })
        for ack in acknowledged {
            #expect(stored[ack.leafIndex] == LogEntry.version(ack.entry).encoded, "leaf \(ack.leafIndex) lost")
        }
        #expect(acknowledged.map(\.leafIndex) == acknowledged.map(\.leafIndex).sorted())
        let versions = bundle.entries.compactMap { entry -> UInt64? in
            guard case .version(let version) = try? LogEntry(encoded: entry.entry) else { return nil }
            return version.version
        }
        #expect(versions == Array(1...UInt64(versions.count)))
    }
}
