import Foundation
import Testing

@testable import SignalingClient
@testable import SignalingProtocol
@testable import SignalingServer

/// Issue 13 part 4: the ban holds on every proof and across bans; the data directory is private; bans follow the
/// client named by a trusted proxy.
@Suite("Bans on every proof")
struct BanTests {
    @Test("connections opened before a ban get no more guesses evaluated once it falls")
    func banCheckedOnEveryProof() async throws {
        var configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        configuration.delayThreshold = 100
        configuration.banThreshold = 5
        try await withServer(configuration) { server, url, _ in
            let connections = (0..<8).map { _ in RawConnection(url: url) }
            for connection in connections { _ = try await connection.challenge() }
            var codes: [SignalErrorCode?] = []
            for connection in connections {
                connection.send(badHello())
                codes.append(try await connection.nextMessage("answer to a bad hello")?.errorCode)
                await connection.close()
            }
            #expect(codes == [.badProof, .badProof, .badProof, .badProof, .banned, .banned, .banned, .banned])
            #expect(server.context.metrics.value("harp_signal_refused_proofs_total") == 5)
        }
    }

    @Test("a ban does not reset the count: the first failure after it bans again, also after a restart")
    func countKeptAcrossBans() async throws {
        let directory = try temporaryDirectory()
        var configuration = makeServerConfiguration(dataDirectory: directory)
        configuration.delayThreshold = 100
        configuration.banThreshold = 3
        configuration.banDuration = .seconds(60)
        configuration.failureWindow = .seconds(600)
        let start = Date(timeIntervalSince1970: 1_000_000)
        let store = try AbuseStore(directory: directory, configuration: configuration, now: start)
        for index in 0..<2 {
            #expect(
                try await store.recordFailure("203.0.113.9", reason: .badProof, now: start + Double(index)) == .refuse)
        }
        let banned = try await store.recordFailure("203.0.113.9", reason: .badProof, now: start + 2)
        #expect(banned == .banned(until: start + 62))
        let afterBan = start + 70
        #expect(store.bannedUntil("203.0.113.9", now: afterBan) == nil)
        #expect(
            try await store.recordFailure("203.0.113.9", reason: .badProof, now: afterBan)
                == .banned(until: afterBan + 60))
        // Another address is not affected.
        #expect(try await store.recordFailure("203.0.113.10", reason: .badProof, now: afterBan) == .refuse)

        let restarted = try AbuseStore(directory: directory, configuration: configuration, now: afterBan + 120)
        let again = afterBan + 121
        #expect(
            try await restarted.recordFailure("203.0.113.9", reason: .badProof, now: again)
                == .banned(until: again + 60))
    }

    @Test("the database and the self-signed key are created 0600; an existing key file is never written over")
    func privateFiles() async throws {
        let directory = try temporaryDirectory()
        var configuration = makeServerConfiguration(dataDirectory: directory)
        configuration.tls = .selfSigned
        _ = try SignalServer(configuration: configuration, logger: makeTestLogger("test.server"))
        for file in ["signal.sqlite", "tls-key.pem"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/" + file)
            let mode = try #require(attributes[.posixPermissions] as? Int)
            #expect(mode & 0o777 == 0o600, "\(file) has mode \(String(mode, radix: 8))")
        }
        let planted = directory + "/planted.pem"
        #expect(FileManager.default.createFile(atPath: planted, contents: Data("old".utf8)))
        #expect(throws: SignalServerError.self) { try ServerTLS.writeNew("new", to: planted, permissions: 0o600) }
        #expect(FileManager.default.contents(atPath: planted) == Data("old".utf8))
    }

    @Test("behind a trusted proxy, failures and bans count against the forwarded client, not the proxy")
    func trustedProxyForwardsClient() async throws {
        var configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        configuration.delayThreshold = 100
        configuration.banThreshold = 2
        configuration.trustedProxies = ["127.0.0.1"]
        try await withServer(configuration) { _, url, _ in
            for _ in 0..<2 {
                let attacker = RawConnection(url: url, forwardedFor: "198.51.100.7")
                _ = try await attacker.challenge()
                attacker.send(badHello())
                _ = try await attacker.nextMessage("answer to a bad hello")
                await attacker.close()
            }
            let attackerAgain = RawConnection(url: url, forwardedFor: "10.9.9.9, 198.51.100.7")
            #expect(try await attackerAgain.nextMessage("banned attacker")?.errorCode == .banned)
            await attackerAgain.close()
            let other = RawConnection(url: url, forwardedFor: "198.51.100.8")
            _ = try await other.challenge()
            await other.close()
        }
    }

    @Test("without a trusted proxy, X-Forwarded-For is ignored")
    func untrustedForwardedForIgnored() async throws {
        var configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        configuration.delayThreshold = 100
        configuration.banThreshold = 1
        try await withServer(configuration) { _, url, _ in
            let attacker = RawConnection(url: url, forwardedFor: "198.51.100.7")
            _ = try await attacker.challenge()
            attacker.send(badHello())
            #expect(try await attacker.nextMessage("ban")?.errorCode == .banned)
            await attacker.close()
            let pretender = RawConnection(url: url, forwardedFor: "198.51.100.8")
            #expect(try await pretender.nextMessage("still banned")?.errorCode == .banned)
            await pretender.close()
        }
    }
}
