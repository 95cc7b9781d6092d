import ChunkStore
import Crypto
import Foundation
import Testing
import VersionLog

@testable import SignalingServer

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A small HTTP client for the log's endpoints.
struct LogHTTP {
    let base: String

    struct Answer {
        var status: Int
        var body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    func request(_ method: String, _ path: String, body: Data? = nil) async throws -> Answer {
        var request = URLRequest(url: try #require(URL(string: base + path)))
        request.httpMethod = method
        request.httpBody = body
        let (data, response) = try await URLSession.shared.data(for: request)
        return Answer(status: (response as? HTTPURLResponse)?.statusCode ?? 0, body: data)
    }

    func append(_ entry: VersionEntry, expected: Hash256? = nil) async throws -> Answer {
        try await request(
            "POST", "/v1/log/append",
            body: Data((expected ?? entry.previousHash).bytes + LogEntry.version(entry).encoded))
    }

    func proof(_ lineage: Hash256) async throws -> Answer {
        try await request("GET", "/v1/log/proof?lineage=\(lineage.hex)")
    }
}

/// The version log's HTTP endpoints, the witness and publication with a quorum, with in-process servers on loopback.
@Suite("Version log over HTTP")
struct LogHTTPTests {
    static let lineage = VersionEntry.lineage(instance: "https://cloud.test", fileID: "42")

    static func version(
        _ device: Curve25519.Signing.PrivateKey, after previous: VersionEntry?, size: UInt64 = 1
    )
        throws -> VersionEntry
    {
        try VersionEntry.signed(
            lineage: lineage, previous: previous, operation: previous == nil ? .create : .modify,
            contentRoot: Hash256.sha256(Array("v\(size)".utf8)), size: size, etag: "e\(size)", authorUser: "alice",
            time: Int64(Date().timeIntervalSince1970), device: device)
    }

    /// A server configuration whose data directory already holds its keys.
    static func configuration(name: String) throws -> (SignalServerConfiguration, ServerKeys) {
        let directory = try temporaryDirectory()
        let keys = try ServerKeys.loadOrCreate(directory: directory, name: name)
        var configuration = makeServerConfiguration(dataDirectory: directory)
        configuration.publishInterval = .milliseconds(50)
        return (configuration, keys)
    }

    static func enroll(_ server: SignalServer, _ device: Curve25519.Signing.PrivateKey) async throws {
        try await server.log.appendEnrollment(
            .enroll, device: DeviceKey(device.publicKey), user: "alice", now: Int64(Date().timeIntervalSince1970))
    }

    @Test func appendAnswersTheLeafTheHeadOrTheReason() async throws {
        let (configuration, _) = try Self.configuration(name: "solo")
        try await withServer(configuration) { server, _, port in
            let http = LogHTTP(base: "http://127.0.0.1:\(port)")
            let device = Curve25519.Signing.PrivateKey()
            let first = try Self.version(device, after: nil)
            let unenrolled = try await http.append(first)
            #expect(unenrolled.status == 403 && unenrolled.text.contains("not enrolled"))
            try await Self.enroll(server, device)
            let appended = try await http.append(first)
            #expect(appended.status == 200 && appended.text == #"{"leafIndex":1}"#)
            let stale = try await http.append(try Self.version(device, after: nil, size: 2))
            #expect(stale.status == 409)
            let head =
                try #require(
                    try JSONSerialization.jsonObject(with: stale.body) as? [String: Any])["head"] as? [String: Any]
            #expect(head?["version"] as? Int == 1 && head?["chainHash"] as? String == first.chainHash.hex)
            #expect(head?["entry"] as? String == Data(LogEntry.version(first).encoded).base64EncodedString())
            // Bodies are bounded before they are parsed.
            let huge = try await http.request("POST", "/v1/log/append", body: Data(count: 64 * 1024))
            #expect(huge.status == 413)
            #expect(try await http.request("POST", "/v1/log/append", body: Data(count: 10)).status == 400)
            #expect(try await http.request("GET", "/v1/log/proof?lineage=zz").status == 400)
            #expect(server.context.metrics.value("harp_signal_log_appends_total") == 1)
        }
    }

    @Test func aStandaloneLogPublishesItsOwnCheckpointsAndServesProofs() async throws {
        let (configuration, keys) = try Self.configuration(name: "solo")
        try await withServer(configuration) { server, _, port in
            let http = LogHTTP(base: "http://127.0.0.1:\(port)")
            #expect(try await http.request("GET", "/v1/log/checkpoint").status == 404)
            let device = Curve25519.Signing.PrivateKey()
            try await Self.enroll(server, device)
            let first = try Self.version(device, after: nil)
            #expect(try await http.append(first).status == 200)
            let published = try await poll(seconds: 10) { () async throws -> String? in
                // The enrollment alone may be published first: wait for the checkpoint that holds the version.
                let answer = try await http.request("GET", "/v1/log/checkpoint")
                guard answer.status == 200, let note = try? SignedNote(parsing: answer.text),
                    (try? Checkpoint(text: note.text))?.size == 2
                else { return nil }
                return answer.text
            }
            let note = try SignedNote(parsing: try #require(published))
            #expect(try note.verifiedSigners(among: [keys.log.verifierKey]).count == 1)
            #expect(try Checkpoint(text: note.text).size == 2)
            let bundle = try ProofBundle(json: Array(try await http.proof(Self.lineage).body))
            #expect(bundle.entries.map(\.leafIndex) == [1] && bundle.enrollments.map(\.leafIndex) == [0])
            #expect(try await http.proof(VersionEntry.lineage(instance: "x", fileID: "1")).status == 404)
        }
    }

    @Test func aFederatedLogPublishesOnlyWithItsQuorumAndItsProofsVerify() async throws {
        let (configA, keysA) = try Self.configuration(name: "a.test")
        let (configB, keysB) = try Self.configuration(name: "b.test")
        let (configC, keysC) = try Self.configuration(name: "c.test")
        // B and C witness A's log; A lists B (up) and C (first down).
        var witnessB = configB
        witnessB.federation = Federation(servers: [
            .init(url: "http://127.0.0.1:1", logKey: keysA.log.verifierKey, witnessKey: keysA.witness.verifierKey)
        ])
        witnessB.witnessQuorum = 0
        var witnessCConfiguration = configC
        witnessCConfiguration.federation = witnessB.federation
        witnessCConfiguration.witnessQuorum = 0
        let witnessC = witnessCConfiguration
        try await withServer(witnessB) { _, _, portB in
            let down = RefusingPort()
            let policy = try WitnessPolicy(
                log: keysA.log.verifierKey,
                witnesses: [
                    .init(name: "b", key: keysB.witness.verifierKey), .init(name: "c", key: keysC.witness.verifierKey),
                ], quorum: 2)
            var logAConfiguration = configA
            logAConfiguration.federation = Federation(servers: [
                .init(
                    url: "http://127.0.0.1:\(portB)", logKey: keysB.log.verifierKey,
                    witnessKey: keysB.witness.verifierKey),
                .init(
                    url: "http://127.0.0.1:\(down.port)", logKey: keysC.log.verifierKey,
                    witnessKey: keysC.witness.verifierKey),
            ])
            let logA = logAConfiguration
            let device = Curve25519.Signing.PrivateKey()
            // 2 of 2 with C down: nothing is published.
            try await withServer(logA) { server, _, port in
                let http = LogHTTP(base: "http://127.0.0.1:\(port)")
                try await Self.enroll(server, device)
                #expect(try await http.append(try Self.version(device, after: nil)).status == 200)
                for _ in 0..<20 { try await server.publisher.publishOnce() }
                #expect(try await http.request("GET", "/v1/log/checkpoint").status == 404)
                #expect(try await server.log.latestPublished() == nil)
            }
            // Now C is up (on another port): the same log publishes within the target, cosigned by both.
            try await withServer(witnessC) { _, _, portC in
                var withC = logA
                withC.federation.servers[1].url = "http://127.0.0.1:\(portC)"
                try await withServer(withC) { server, _, port in
                    let http = LogHTTP(base: "http://127.0.0.1:\(port)")
                    let start = ContinuousClock.now
                    let published = try await poll(seconds: 10) { () async throws -> Bool? in
                        try await http.request("GET", "/v1/log/checkpoint").status == 200 ? true : nil
                    }
                    #expect(published == true)
                    #expect(ContinuousClock.now - start < .seconds(10))
                    let bundle = try ProofBundle(json: Array(try await http.proof(Self.lineage).body))
                    let history = try ProofVerifier(policy: policy, now: Int64(Date().timeIntervalSince1970))
                        .verify(bundle)
                    #expect(history.versions.map(\.number) == [1])
                    #expect(Set(history.witnesses) == ["b", "c"])
                    #expect(server.context.metrics.value("harp_signal_log_checkpoints_published_total") == 1)
                }
            }
        }
    }

    @Test func aWitnessRefusesAForkAndARollbackAndRemembersAcrossRestarts() async throws {
        let (configB, keysB) = try Self.configuration(name: "b.test")
        let logKey = try NoteSigningKey.generate(name: "a.test", type: .ed25519)
        var witnessB = configB
        witnessB.federation = Federation(servers: [
            .init(
                url: "http://127.0.0.1:1", logKey: logKey.verifierKey,
                witnessKey: try NoteSigningKey.generate(name: "a.test/witness", type: .cosignatureV1).verifierKey)
        ])
        witnessB.witnessQuorum = 0
        var honestLog = InMemoryLog(key: logKey)
        var forkLog = InMemoryLog(key: logKey)
        for index in 0..<4 {
            let entry = try EnrollmentEntry.attested(
                .enroll, device: DeviceKey(Curve25519.Signing.PrivateKey().publicKey), user: "u\(index)",
                time: 1, logKey: logKey)
            honestLog.append(.enrollment(entry))
            let forked = try EnrollmentEntry.attested(
                .enroll, device: entry.device, user: "mallory", time: 1, logKey: logKey)
            forkLog.append(.enrollment(index == 3 ? forked : entry))
        }
        let honest = honestLog
        let fork = forkLog
        @Sendable func body(_ log: InMemoryLog, old: Int, size: Int) -> Data {
            Data((log.addCheckpointRequest(oldSize: old, note: log.signedCheckpoint(size: size))?.body ?? "").utf8)
        }
        try await withServer(witnessB) { server, _, port in
            let http = LogHTTP(base: "http://127.0.0.1:\(port)")
            let first = try await http.request("POST", "/add-checkpoint", body: body(honest, old: 0, size: 2))
            #expect(first.status == 200)
            let line = try SignedNote(parsing: "x\n\n" + first.text).signatures[0]
            #expect(
                Cosignature.verify(
                    line, checkpointText: honest.checkpoint(size: 2).text, key: keysB.witness.verifierKey)
                    != nil)
            #expect(
                try await http.request("POST", "/add-checkpoint", body: body(honest, old: 2, size: 4)).status == 200)
            // The fork at size 4: same size, other root.
            let forked = try await http.request("POST", "/add-checkpoint", body: body(fork, old: 4, size: 4))
            #expect(forked.status == 409 && forked.text == "4\n")
            // A rollback to size 2, presented as new.
            let rollback = try await http.request("POST", "/add-checkpoint", body: body(honest, old: 0, size: 2))
            #expect(rollback.status == 409)
            #expect(server.context.metrics.value("harp_signal_witness_refusals_total") == 2)
            let huge = try await http.request(
                "POST", "/add-checkpoint", body: Data(count: AddCheckpointRequest.maximumBodySize + 1))
            #expect(huge.status == 413)
        }
        // After a restart it still knows size 4: the fork is refused again.
        try await withServer(witnessB) { _, _, port in
            let http = LogHTTP(base: "http://127.0.0.1:\(port)")
            let again = try await http.request("POST", "/add-checkpoint", body: body(fork, old: 4, size: 4))
            let smaller = try await http.request("POST", "/add-checkpoint", body: body(fork, old: 0, size: 3))
            #expect(again.status == 409 && smaller.status == 409)
        }
    }
}

/// Polls `probe` every 50 ms until it returns a value or `seconds` pass.
func poll<T: Sendable>(seconds: Double, _ probe: @Sendable () async throws -> T?) async throws -> T? {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while ContinuousClock.now < deadline {
        if let value = try await probe() { return value }
        try await Task.sleep(for: .milliseconds(50))
    }
    return nil
}

/// A loopback port that refuses connections (bound, never listening), for a witness that is down.
final class RefusingPort: Sendable {
    let port: Int
    private let descriptor: Int32

    init() {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.descriptor = descriptor
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        address.sin_port = 0
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.port = Int(UInt16(bigEndian: bound.sin_port))
    }

    deinit { close(descriptor) }
}
