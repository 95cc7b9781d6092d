import Crypto
import CryptoExtras
import Foundation
import HarpBasics
import Logging

@testable import DevCloud

/// Test data as the recording made it: the AES-256-CTR keystream with key SHA-256("harp-realnc:NAME") and a zero IV.
enum TestData {
    static func keystream(name: String, count: Int) throws -> [UInt8] {
        let key = SymmetricKey(data: SHA256.hash(data: Data("harp-realnc:\(name)".utf8)))
        let nonce = try AES._CTR.Nonce(nonceBytes: [UInt8](repeating: 0, count: 16))
        return Array(try AES._CTR.encrypt([UInt8](repeating: 0, count: count), using: key, nonce: nonce))
    }

    static func sha1Hex(_ bytes: [UInt8]) -> String {
        Hex.encode(Insecure.SHA1.hash(data: bytes))
    }
}

/// A DevCloud on a fresh temporary data directory, listening on 127.0.0.1 with port 0.
final class TestServer: Sendable {
    static let passwords = ["alice": "alice-secret-pw", "bob": "bob-secret-pw", "carol": "carol-secret-pw"]

    let server: DevCloudServer
    let port: Int
    let directory: URL

    init(
        shares: [DevCloudConfiguration.Share] = [], egress: Int? = nil, autoGrant: String? = nil,
        folders: [String: [String]] = [:],
        logger: Logger = Logger(label: "devcloud-test") { _ in SwiftLogNoOpLogHandler() }
    ) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("devcloud-test-\(UUID().uuidString)")
        for (user, paths) in folders {
            for path in paths {
                try FileManager.default.createDirectory(
                    at: directory.appendingPathComponent("files/\(user)/\(path)"), withIntermediateDirectories: true)
            }
        }
        let users = ["alice": "Alice Example", "bob": "Bob Example", "carol": "Carol Example"].map {
            DevCloudConfiguration.User(name: $0.key, password: Self.passwords[$0.key]!, displayName: $0.value)
        }
        let configuration = DevCloudConfiguration(
            dataDirectory: directory.path, users: users.sorted { $0.name < $1.name }, shares: shares,
            egressBytesPerSecond: egress, autoGrantLoginFlowUser: autoGrant)
        server = DevCloudServer(configuration: configuration, logger: logger)
        port = try await server.start()
    }

    func stop() async {
        await server.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    static func basic(_ user: String, _ password: String? = nil) -> (String, String) {
        let secret = password ?? passwords[user]!
        return ("Authorization", "Basic " + Data("\(user):\(secret)".utf8).base64EncodedString())
    }

    func request(
        _ method: String, _ path: String, as user: String? = nil, password: String? = nil,
        headers: [(String, String)] = [], body: [UInt8] = []
    ) async throws -> HTTPResult {
        var all = headers
        if let user { all.append(Self.basic(user, password)) }
        return try await RawHTTP.send(port: port, method: method, path: path, headers: all, body: body)
    }

    /// Seeds alice's /Footage as recorded: clip1.mp4 (1 MiB) and big-chunked.bin (12 MiB) with their checksums.
    func seedFootage() async throws -> (clip: [UInt8], big: [UInt8]) {
        let clip = try TestData.keystream(name: "clip1.mp4", count: 1_048_576)
        let big = try TestData.keystream(name: "big-chunked.bin", count: 12_582_912)
        for (name, bytes, mtime) in [("clip1.mp4", clip, "1700000000"), ("big-chunked.bin", big, "1700000100")] {
            let result = try await request(
                "PUT", "/remote.php/dav/files/alice/Footage/\(name)", as: "alice",
                headers: [("X-OC-Mtime", mtime), ("OC-Checksum", "SHA1:" + TestData.sha1Hex(bytes))], body: bytes)
            precondition(result.status == 201, "seeding \(name) failed with \(result.status)")
        }
        return (clip, big)
    }
}
