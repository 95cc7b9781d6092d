import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import Synchronization
import Testing

@testable import SignalingClient
@testable import SignalingProtocol
@testable import SignalingServer

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out waiting for \(what)" }
}

/// Runs `body`, failing with ``TimedOut`` if it takes longer than `seconds` (a bound on a wait, not a sleep).
func withTimeout<T: Sendable>(
    _ what: String, seconds: Double = 15, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw TimedOut(what: what) }
        return value
    }
}

func makeTestLogger(_ label: String) -> Logger {
    var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
    logger.logLevel =
        ProcessInfo.processInfo.environment["HARP_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
    return logger
}

func temporaryDirectory() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("harp-signal-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// A configuration with the test's fast limits: port 0 on 127.0.0.1, short timeouts, tiny delays.
func makeServerConfiguration(dataDirectory: String) -> SignalServerConfiguration {
    var configuration = SignalServerConfiguration(dataDirectory: dataDirectory)
    configuration.host = "127.0.0.1"
    configuration.port = 0
    // Generous: on a loaded CI machine a hello can take seconds to be handled; the timeout test sets its own.
    configuration.helloTimeout = .seconds(60)
    configuration.requestTimeout = .seconds(60)
    configuration.failureDelay = .milliseconds(5)
    configuration.messagesPerSecond = 1000
    configuration.messageBurst = 1000
    return configuration
}

/// Runs a real server on 127.0.0.1 for the duration of `body`, then cancels it.
func withServer<T: Sendable>(
    _ configuration: SignalServerConfiguration,
    _ body: @escaping @Sendable (SignalServer, _ url: String, _ port: Int) async throws -> T
) async throws -> T {
    let server = try SignalServer(configuration: configuration, logger: makeTestLogger("test.server"))
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            try await server.run()
            return nil
        }
        let port = try await server.waitUntilListening()
        let url = "\(server.scheme)://127.0.0.1:\(port)\(Signaling.webSocketPath)"
        group.addTask { try await body(server, url, port) }
        defer { group.cancelAll() }
        while let next = try await group.next() {
            if let value = next { return value }
        }
        throw TimedOut(what: "server body")
    }
}

/// Every event a client emitted, with waits for the ones a test expects.
final class EventLog: Sendable {
    private struct Waiter {
        let count: Int
        let predicate: @Sendable (SignalClient.Event) -> Bool
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var events: [SignalClient.Event] = []
        var waiters: [UInt64: Waiter] = [:]
        var next: UInt64 = 0
    }

    private let state = Mutex(State())

    var events: [SignalClient.Event] { state.withLock { $0.events } }

    func record(_ event: SignalClient.Event) {
        let ready = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.events.append(event)
            var ready: [CheckedContinuation<Void, any Error>] = []
            for (token, waiter) in state.waiters where state.events.count(where: waiter.predicate) >= waiter.count {
                state.waiters[token] = nil
                ready.append(waiter.continuation)
            }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    /// Waits until at least `count` recorded events match.
    func wait(
        count: Int = 1, _ what: String, seconds: Double = 15,
        where predicate: @escaping @Sendable (SignalClient.Event) -> Bool
    )
        async throws
    {
        try await withTimeout(what, seconds: seconds) {
            let token = self.state.withLock { state -> UInt64 in
                state.next += 1
                return state.next
            }
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    let done = self.state.withLock { state -> Bool in
                        if Task.isCancelled { return true }
                        if state.events.count(where: predicate) >= count { return true }
                        state.waiters[token] = Waiter(count: count, predicate: predicate, continuation: continuation)
                        return false
                    }
                    if done { continuation.resume() }
                }
            } onCancel: {
                let waiter = self.state.withLock { $0.waiters.removeValue(forKey: token) }
                waiter?.continuation.resume(throwing: CancellationError())
            }
        }
    }
}

/// A client under test with its key and its event log.
struct Peer: Sendable {
    let client: SignalClient
    let device: Ed25519Signer
    let log: EventLog
}

/// Runs `count` clients (each with its own device key) against `url` while `body` runs.
func withPeers<T: Sendable>(
    _ count: Int, url: String, devices: [Ed25519Signer]? = nil,
    configure: @Sendable (inout SignalClient.Configuration) -> Void = { _ in },
    _ body: @escaping @Sendable ([Peer]) async throws -> T
) async throws -> T {
    let peers = (0..<count).map { index -> Peer in
        var configuration = SignalClient.Configuration(url: url)
        configuration.initialBackoff = .milliseconds(50)
        configuration.maxBackoff = .milliseconds(500)
        configure(&configuration)
        let device = devices?[index] ?? Ed25519Signer()
        return Peer(
            client: SignalClient(
                configuration: configuration, device: device, logger: makeTestLogger("test.client.\(index)")),
            device: device, log: EventLog())
    }
    return try await withThrowingTaskGroup(of: T?.self) { group in
        for peer in peers {
            group.addTask {
                await peer.client.run()
                return nil
            }
            group.addTask {
                for await event in peer.client.events { peer.log.record(event) }
                return nil
            }
        }
        group.addTask { try await body(peers) }
        defer { group.cancelAll() }
        while let next = try await group.next() {
            if let value = next { return value }
        }
        throw TimedOut(what: "peers body")
    }
}

/// Two clients that announce loopback observations (`announceLoopbackReflexive`), joined in turn to a new swarm on
/// the server at `url`: `a` at 10.9.9.1:41000 with a reflexive candidate on `aReflexivePort`, then `b` at
/// 10.9.9.2:41001, with one on `bReflexivePort` when given. `body` gets the swarm, both, and the members `b`'s join
/// returned.
func withTwoMembers<T: Sendable>(
    url: String, aReflexivePort: UInt16 = 41000, bReflexivePort: UInt16? = nil,
    _ body: @escaping @Sendable (_ swarm: Ed25519Signer, _ a: Peer, _ b: Peer, _ seenByB: [PeerInfo]) async throws -> T
) async throws -> T {
    try await withPeers(2, url: url, configure: { $0.announceLoopbackReflexive = true }) { peers in
        let swarm = Ed25519Signer()
        let (a, b) = (peers[0], peers[1])
        _ = try await withTimeout("a joins") {
            try await a.client.join(swarm: swarm, addresses: ["10.9.9.1:41000"], reflexivePort: aReflexivePort)
        }
        let seen = try await withTimeout("b joins") {
            try await b.client.join(swarm: swarm, addresses: ["10.9.9.2:41001"], reflexivePort: bReflexivePort)
        }
        return try await body(swarm, a, b, seen)
    }
}

/// A signer that claims one public key but signs with another: a peer that does not know the swarm key.
struct ImpostorSigner: SignalSigner {
    let publicKey: PublicKey32
    let actual = Ed25519Signer()
    func sign(_ message: [UInt8]) throws -> [UInt8] { try actual.sign(message) }
}

extension SignalClient.Event {
    var connected: Bool { if case .connected = self { true } else { false } }
    func joined(_ swarm: SwarmID) -> [PeerInfo]? {
        if case .joined(let s, let peers) = self, s == swarm { return peers }
        return nil
    }
    func peerJoined(_ swarm: SwarmID, _ device: DeviceID) -> Bool {
        if case .peerJoined(let s, let peer) = self { return s == swarm && peer.device == device }
        return false
    }
    var anyPeerJoined: Bool { if case .peerJoined = self { true } else { false } }
    var serverErrorCode: SignalErrorCode? { if case .serverError(let code, _) = self { code } else { nil } }
    var relay: RelayStream? { if case .relayIncoming(let stream) = self { stream } else { nil } }
}
