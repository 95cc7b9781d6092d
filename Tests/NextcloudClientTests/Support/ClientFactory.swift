import Foundation
import Logging

@testable import NextcloudClient

enum TestClients {
    static let password = "app-PW-7f3c9a1e-never-in-logs"

    /// Options with fast retries and short timeouts for loopback tests.
    static func options(attempts: Int = 4) -> TransportOptions {
        var options = TransportOptions(environment: [:])
        options.retry = RetryPolicy(
            maximumAttempts: attempts, baseDelay: .milliseconds(2), maximumDelay: .milliseconds(20))
        options.connectTimeoutMilliseconds = 5_000
        options.lowSpeedSeconds = 30
        return options
    }

    static func client(
        _ base: String, user: String = "alice", password: String = TestClients.password, attempts: Int = 4,
        logger: Logger = Logger(label: "test")
    ) -> NextcloudClient {
        NextcloudClient(
            credentials: Credentials(server: URL(string: base)!, user: user, appPassword: password),
            options: options(attempts: attempts), logger: logger)
    }

    /// The bytes of a deterministic test file.
    static func bytes(_ count: Int, seed: UInt8 = 7) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &+ ($0 >> 8)) }
    }
}

/// A sink that reports its first bytes through a stream, for cancellation tests.
final class SignallingSink: ByteSink {
    let inner = DataSink()
    let firstBytes: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() {
        (firstBytes, continuation) = AsyncStream<Void>.makeStream()
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try inner.write(bytes)
        continuation.yield()
    }
}
