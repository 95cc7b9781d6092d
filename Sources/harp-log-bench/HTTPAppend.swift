// `harp-log-bench device SEED` and `harp-log-bench append BASE_URL COUNT SEED [LINEAGES]`: the server-side figures.
// `append` signs and POSTs COUNT versions to a running `harp-cli signal serve` (its device enrolled beforehand with
// `harp-cli signal enroll`), LINEAGES chains at once, then waits until a published checkpoint holds them all.
import ChunkStore
import Crypto
import Foundation
import VersionLog

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

enum HTTPAppend {
    /// The bench's device key, derived from a seed so the script can enroll it first.
    static func device(seed: String) throws -> Curve25519.Signing.PrivateKey {
        try Curve25519.Signing.PrivateKey(rawRepresentation: Hash256.sha256(Array(seed.utf8)).bytes)
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func post(_ url: URL, _ body: Data) async throws -> (Int, Data) {
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.httpBody = body
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    /// Appends `count` versions over `lineages` chains at once; returns the seconds taken.
    static func run(base: String, count: Int, seed: String, lineages: Int) async throws {
        guard let url = URL(string: base + "/v1/log/append"),
            let checkpointURL = URL(string: base + "/v1/log/checkpoint")
        else { throw Failure(description: "bad URL") }
        let device = try device(seed: seed)
        let clock = ContinuousClock()
        let start = clock.now
        let run = UUID().uuidString
        let lastLeaf = try await withThrowingTaskGroup(of: Int.self) { group in
            for chain in 0..<lineages {
                group.addTask {
                    let lineage = VersionEntry.lineage(instance: "https://bench.example", fileID: "\(run)-\(chain)")
                    var head: VersionEntry?
                    var leaf = 0
                    for index in 0..<(count / lineages) {
                        let entry = try VersionEntry.signed(
                            lineage: lineage, previous: head, operation: head == nil ? .create : .modify,
                            contentRoot: Hash256.sha256(Array("\(chain) \(index)".utf8)), size: UInt64(index),
                            etag: "\"\(index)\"", authorUser: "bench", time: Int64(Date().timeIntervalSince1970),
                            device: device)
                        let body = Data((head?.chainHash ?? .zero).bytes + LogEntry.version(entry).encoded)
                        let (status, data) = try await post(url, body)
                        guard status == 200 else {
                            throw Failure(
                                description: "append answered \(status): \(String(decoding: data, as: UTF8.self))")
                        }
                        head = entry
                        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
                        leaf = object?["leafIndex"] as? Int ?? leaf
                    }
                    return leaf
                }
            }
            return try await group.reduce(0, max)
        }
        let appended = (count / lineages) * lineages
        let appendTime = clock.now - start
        // Wait for a published (cosigned) checkpoint that holds the last append.
        let publishStart = clock.now
        var publishedSize: UInt64 = 0
        while clock.now - publishStart < .seconds(60) {
            let (data, response) = try await URLSession.shared.data(from: checkpointURL)
            if (response as? HTTPURLResponse)?.statusCode == 200,
                let note = try? SignedNote(parsing: String(decoding: data, as: UTF8.self)),
                let checkpoint = try? Checkpoint(text: note.text)
            {
                publishedSize = checkpoint.size
                if checkpoint.size > UInt64(lastLeaf) { break }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let seconds = Double(appendTime.components.seconds) + Double(appendTime.components.attoseconds) / 1e18
        let publish = clock.now - publishStart
        print("appended: \(appended) versions over \(lineages) lineages at once")
        print(String(format: "appends per second (HTTP, signed, fsynced): %.0f", Double(appended) / seconds))
        print(
            String(
                format: "published checkpoint of size %llu, %.2f s after the last append", publishedSize,
                Double(publish.components.seconds) + Double(publish.components.attoseconds) / 1e18))
    }
}
