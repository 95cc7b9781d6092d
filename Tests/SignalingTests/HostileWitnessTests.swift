import Crypto
import Foundation
import HarpTestHTTPServer
import Testing
import VersionLog

@testable import SignalingServer

/// A witness of the federation that answers `add-checkpoint` with far more than a witness may: the publisher must
/// close its connection at the bound (the witness cannot write it all) and publish nothing without its quorum.
@Suite("Hostile witness")
struct HostileWitnessTests {
    enum Answer: String, CaseIterable, Sendable {
        case contentLengthOneGiB
        case endlessChunked
    }

    @Test(arguments: Answer.allCases)
    func aWitnessAnsweringWithoutEndIsCutOffAndNotCounted(_ answer: Answer) async throws {
        let piece = [UInt8](repeating: 0x61, count: 64 << 10)
        let head: String
        let written: [UInt8]
        switch answer {
        case .contentLengthOneGiB:
            head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(1 << 30)\r\n\r\n"
            written = piece
        case .endlessChunked:
            head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
            written = Array("10000\r\n".utf8) + piece + Array("\r\n".utf8)
        }
        // 64 MiB: far more than the kernel buffers between two loopback sockets.
        let witness = ScriptedServer(head: Array(head.utf8), piece: written, pieces: 1024)
        let (configuration, _) = try LogHTTPTests.configuration(name: "a.test")
        try await witness.run { base, outcomes in
            var log = configuration
            log.federation = Federation(servers: [
                .init(
                    url: base,
                    logKey: try NoteSigningKey.generate(name: "w.test", type: .ed25519).verifierKey,
                    witnessKey: try NoteSigningKey.generate(name: "w.test/witness", type: .cosignatureV1).verifierKey)
            ])
            log.witnessQuorum = 1
            // Only the explicit rounds below ask the witness.
            log.publishInterval = .seconds(3600)
            let logConfiguration = log
            try await withServer(logConfiguration) { server, _, _ in
                try await LogHTTPTests.enroll(server, Curve25519.Signing.PrivateKey())
                let published = try await server.publisher.publishOnce()
                #expect(published == nil)
                #expect(try await server.log.latestPublished() == nil)
            }
            let outcome = try await first(of: outcomes, within: 60, "the hostile witness's report")
            #expect(outcome.requestText.hasPrefix("POST /add-checkpoint HTTP/1.1"))
            #expect(!outcome.complete, "the witness wrote all 64 MiB: the publisher read on past its bound")
        }
    }
}

/// The first element of `stream`, or a failure naming `what` if none comes within `seconds`.
func first<T: Sendable>(of stream: AsyncStream<T>, within seconds: Double, _ what: String) async throws -> T {
    guard let value = try await withTimeout(what, seconds: seconds, { await stream.first { _ in true } }) else {
        throw TimedOut(what: what)
    }
    return value
}
