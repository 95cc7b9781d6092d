import Foundation
import Testing

/// `harp-cli devcloud serve` as a separate process: the first stdout line is the URL, SIGTERM stops it.
@Suite("harp-cli devcloud serve")
struct ProcessTests {
    /// The built `harp-cli` next to this test bundle (SwiftPM builds every product before running tests).
    static var binary: URL {
        Bundle.module.bundleURL.deletingLastPathComponent().appendingPathComponent("harp-cli")
    }

    @Test("serves the configured users and shares and prints its URL first")
    func serve() async throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: Self.binary.path),
            "harp-cli is not built at \(Self.binary.path)")
        let data = FileManager.default.temporaryDirectory.appendingPathComponent(
            "devcloud-process-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = [
            "devcloud", "serve", "--data", data.path, "--listen", "127.0.0.1:0", "--user", "alice:a-pw", "--user",
            "bob:b-pw",
            "--share", "alice:/Footage:bob:1", "--auto-grant", "bob",
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let line = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<String, any Error>) in
            Thread {
                var bytes: [UInt8] = []
                while !bytes.contains(10) {
                    let chunk = output.fileHandleForReading.availableData
                    if chunk.isEmpty { break }
                    bytes += chunk
                }
                let text = String(decoding: bytes, as: UTF8.self)
                continuation.resume(returning: String(text.split(separator: "\n").first ?? ""))
            }.start()
        }
        #expect(line.hasPrefix("http://127.0.0.1:"))
        let port = try #require(Int(line.split(separator: ":").last ?? ""))
        let auth = ("Authorization", "Basic " + Data("bob:b-pw".utf8).base64EncodedString())
        let propfind = try await RawHTTP.send(
            port: port, method: "PROPFIND", path: "/remote.php/dav/files/bob/Footage", headers: [auth, ("Depth", "0")])
        #expect(propfind.status == 207)
        let stats = try await RawHTTP.send(port: port, method: "GET", path: "/harp-devcloud/stats")
        #expect(stats.status == 200 && stats.text.contains("\"bytesSent\":0"))
        let status = await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            process.terminate()
        }
        #expect(status == 0)
    }
}
