import Foundation
import HarpBasics
import HummingbirdWSClient
public import Logging
import NIOCore
import NIOSSL
public import SignalingProtocol

/// The client of a signaling server: one WebSocket for any number of swarms, kept open by ``run()``, which
/// reconnects with jittered exponential backoff and rejoins every swarm it was asked to be in.
///
/// ```swift
/// let client = SignalClient(configuration: .init(url: "wss://signal.example:7447/v1/ws", pin: fp),
///                           device: deviceSigner, logger: logger)
/// try await withThrowingDiscardingTaskGroup { group in
///     group.addTask { await client.run() }
///     let peers = try await client.join(swarm: swarmSigner, addresses: ["192.0.2.7:7448"])
///     for await event in client.events { ... }   // .peerJoined, .peerLeft, .relayIncoming(stream), ...
/// }
/// ```
public actor SignalClient {
    /// Where and how to connect.
    public struct Configuration: Sendable {
        /// `ws://HOST:PORT/v1/ws` or `wss://HOST:PORT/v1/ws`.
        public var url: String
        /// SHA-256 fingerprint (hex) of the server's certificate; when set, only that certificate is trusted.
        public var pinnedCertificateSHA256: String?
        /// The organisation join key, if the server requires one.
        public var joinKey: [UInt8]?
        /// Reconnect delays: the n-th failed attempt waits a random time in [d/2, d], d = min(max, initial · 2ⁿ).
        public var initialBackoff: Duration = .milliseconds(200)
        public var maxBackoff: Duration = .seconds(30)
        /// Must not exceed the server's frame limit.
        public var maxFrameSize: Int = 64 * 1024
        /// Bytes buffered per incoming relay stream before the connection stops reading.
        public var relayBufferBytes: Int = 1 << 20
        /// Whether to announce a reflexive candidate when the server sees this client on loopback (it runs on the
        /// same host, so the observation says nothing about a NAT): off, except in tests on one host.
        public var announceLoopbackReflexive = false
        /// Messages per second this client sends at most, with a burst: under the server's default limit (20 per
        /// second, burst 60), past which it closes the connection. A device that seeds thousands of files joins that
        /// many swarms: sent at once (and again after every reconnect) they closed the connection each time.
        public var messagesPerSecond: Double = 16
        public var messageBurst: Double = 48

        public init(url: String, pinnedCertificateSHA256: String? = nil, joinKey: [UInt8]? = nil) {
            self.url = url
            self.pinnedCertificateSHA256 = pinnedCertificateSHA256
            self.joinKey = joinKey
        }
    }

    /// What the client tells its user.
    public enum Event: Sendable {
        /// Authenticated to the server (again); joins follow.
        case connected
        /// The connection dropped; the client reconnects by itself. Relay streams of that connection are closed.
        case disconnected
        /// The server accepted a join (also after every rejoin) and named these candidate peers.
        case joined(swarm: SwarmID, peers: [PeerInfo])
        /// The server refused a join; the client stops asking for this swarm.
        case refused(swarm: SwarmID, code: SignalErrorCode)
        /// Another member joined (or re-announced its addresses).
        case peerJoined(swarm: SwarmID, peer: PeerInfo)
        /// A member left or disconnected.
        case peerLeft(swarm: SwarmID, device: DeviceID)
        /// Another member opened a relay stream to us; it is open already: use it, or close it.
        case relayIncoming(RelayStream)
        /// The server coordinates a hole punch with `peer` (asked by either end): dial its candidates from the
        /// listening port after `delay` (0–5 s), then report with ``reportPunch(id:connected:)`` if we asked.
        /// `spray`: this side's part of a spray punch instead (one end behind a symmetric NAT; docs/nat.md).
        case punch(swarm: SwarmID, peer: PeerInfo, delay: Duration, id: UInt32, spray: SprayPart?)
        /// The server sent an error not tied to a request (ban, timeout, replaced); the connection closes. After
        /// `replaced` (another client connected with the same device key) this client stops: ``run()`` returns.
        case serverError(code: SignalErrorCode, message: String)
    }

    /// This side's part of a spray punch (docs/nat.md, "Spray punching").
    public enum SprayPart: Sendable, Equatable {
        /// Behind the symmetric NAT: open many connections to the peer's reflexive candidate.
        case open
        /// Dial random ports of `host` (the other end's public IPv4 address as the server saw it) from the listening
        /// port.
        case probe(host: String)
    }

    /// The event stream (one consumer).
    public nonisolated let events: AsyncStream<Event>
    private let eventSink: AsyncStream<Event>.Continuation
    let configuration: Configuration
    let device: any SignalSigner
    let logger: Logger

    var link = ClientLinkState()
    /// Turns for outgoing messages (`Configuration.messagesPerSecond`).
    var pacer: MessagePacer
    /// The rejoins after the latest welcome, sent at the pacer's rate.
    var rejoining: Task<Void, Never>?
    var memberships: [SwarmID: Membership] = [:]
    var pendingJoins: [UInt64: SwarmID] = [:]
    var relays: [UInt32: RelayStream] = [:]
    var nextRequestID: UInt64 = 1
    let joinWaiters = Waiters<SwarmID, [PeerInfo]>()
    let requestWaiters = Waiters<UInt64, UInt32>()
    var pendingRelayRequests: Set<UInt64> = []
    /// Punch requests awaiting a possible refusal (bounded: the oldest are forgotten).
    var pendingPunchRequests: Set<UInt64> = []
    /// When this client last took the probing part of a spray punch (at most ``maxSprayProbes`` kept).
    var sprayProbeTimes: [ContinuousClock.Instant] = []
    /// Spray punches this client probes for at most in ``sprayProbeWindow``, whatever the server asks.
    static let maxSprayProbes = 4
    static let sprayProbeWindow = Duration.seconds(10)
    var relayRequestTargets: [UInt64: (swarm: SwarmID, peer: DeviceID)] = [:]
    /// Set by a `banned` error: the next reconnect waits at least this long.
    var retryAfter: Duration?
    /// Set by a `replaced` error: another client with this device key took over, so this one stops.
    var replaced = false

    /// How a NAT maps the listening port, from two observations by two destinations (docs/nat.md).
    public enum NATMapping: Sendable, Equatable {
        /// The same external address and port for both: a punch aimed at it can work.
        case endpointIndependent
        /// Another port (or address) for each destination, `ports` the two seen: a symmetric NAT. The reflexive
        /// candidate is left out (its port serves only the server's flow), and `status` says why peers relay.
        case dependent(ports: [UInt16])

        public var isSymmetric: Bool {
            if case .dependent = self { return true }
            return false
        }
    }

    struct Membership {
        let signer: any SignalSigner
        var addresses: [String]
        /// The listening port to announce with the reflexive address the server reports, if any.
        var reflexivePort: UInt16?
    }

    /// Addresses announced per join at most (the server's default cap is 16).
    static let maxAnnounced = 8

    /// Where the server saw this client's connection come from (its reflexive address), from the last `welcome`;
    /// `nil` before it or when the server did not say.
    public internal(set) var observed: ObservedAddress?
    /// Where the server saw a connection from the listening port come from (`ReflexiveProbe`), on this connection to
    /// the server; `nil` before the probe answered, or when it failed (an older server) or saw another address.
    public internal(set) var listenPortMapping: ObservedAddress?
    /// What the two observations of the listening port said of the NAT, when the server has a second observation
    /// point (`welcome.probePort`); nil before both answered or without one.
    public internal(set) var natMapping: NATMapping?
    /// The server's second observation point, from the last `welcome`.
    var probePort: Int?
    /// The probe of this connection, and the TLS configuration the connection used (the probe uses it too).
    var probing: Task<Void, Never>?
    /// Fulfilled when `probing` has ended (joins wait for it, within `probeWait`).
    var probeDone: OneShot<Void>?
    var connectionTLS: TLSConfiguration?
    /// Incremented at every `welcome`: a probe that answers for an earlier connection is ignored.
    var welcomes = 0

    /// Creates a client; nothing happens until ``run()``.
    public init(configuration: Configuration, device: any SignalSigner, logger: Logger) {
        self.configuration = configuration
        self.pacer = MessagePacer(rate: configuration.messagesPerSecond, burst: configuration.messageBurst)
        self.device = device
        self.logger = logger
        (events, eventSink) = AsyncStream<Event>.makeStream()
    }

    func emit(_ event: Event) {
        eventSink.yield(event)
    }

    /// Keeps the connection up until the calling task is cancelled (or another client with the same device key
    /// replaces this one); then finishes ``events``.
    public func run() async {
        var failures = 0
        while !Task.isCancelled {
            let wasAuthenticated = await connectOnce()
            if Task.isCancelled || replaced { break }
            failures = wasAuthenticated ? 0 : failures + 1
            var delay = Self.backoff(
                attempt: failures, initial: configuration.initialBackoff, max: configuration.maxBackoff)
            if let retryAfter {
                delay = Swift.max(delay, retryAfter)
                self.retryAfter = nil
            }
            logger.debug("reconnecting", metadata: ["delay.ms": "\(Int(delay / .milliseconds(1)))"])
            do { try await Task.sleep(for: delay) } catch { break }
        }
        joinWaiters.failAll(CancellationError())
        eventSink.finish()
    }

    /// Jittered exponential backoff: uniform in [d/2, d] with d = min(max, initial · 2^attempt).
    static func backoff(attempt: Int, initial: Duration, max: Duration) -> Duration {
        Backoff(base: initial, cap: max).jitteredDelay(forAttempt: attempt)
    }

    /// Joins swarm `swarm.publicKey`, proving knowledge of its key by signing the server's challenge with it, and
    /// announces `addresses`. Returns the candidate peers once the server accepts; the membership is kept (and
    /// renewed after every reconnect) until ``leave(swarm:)``. Throws ``SignalClientError/refused(_:)`` if the
    /// server refuses. If not connected, waits for the connection; cancel the calling task to stop waiting.
    ///
    /// With `reflexivePort` (the listening port), every join also announces a `reflexive@ADDRESS:PORT` candidate
    /// made of the address the server reports in `welcome` (see ``Candidate``); it follows the address when the
    /// connection is made again from elsewhere.
    public func join(
        swarm: any SignalSigner, addresses: [String], reflexivePort: UInt16? = nil
    ) async throws
        -> [PeerInfo]
    {
        let id = swarm.publicKey
        memberships[id] = Membership(signer: swarm, addresses: addresses, reflexivePort: reflexivePort)
        startProbe()
        let token = joinWaiters.register(id)
        await sendJoin(id)
        return try await joinWaiters.wait(token)
    }

    /// Announces new addresses in a swarm already joined (a port mapping was granted or lost): the join is sent
    /// again with them, and the members are told. A no-op for a swarm not joined.
    public func announce(swarm: SwarmID, addresses: [String]) async {
        guard memberships[swarm] != nil, memberships[swarm]?.addresses != addresses else { return }
        memberships[swarm]?.addresses = addresses
        await sendJoin(swarm)
    }

    /// Leaves a swarm (and stops rejoining it).
    public func leave(swarm: SwarmID) async {
        guard memberships.removeValue(forKey: swarm) != nil else { return }
        joinWaiters.resume(swarm, with: .failure(CancellationError()))
        await send(.leave(.init(swarm: swarm)))
    }

    /// Asks the server for a relay stream to `peer` in `swarm` (both must be joined). Needs a live connection.
    public func openRelay(swarm: SwarmID, to peer: DeviceID) async throws -> RelayStream {
        guard link.isReady else { throw SignalClientError.notConnected }
        let id = nextRequestID
        nextRequestID += 1
        pendingRelayRequests.insert(id)
        relayRequestTargets[id] = (swarm, peer)
        let token = requestWaiters.register(id)
        await send(.relayOpen(.init(id: id, swarm: swarm, peer: peer)))
        let stream = try await requestWaiters.wait(token)
        if let relay = relays[stream] { return relay }
        // Opened, then closed by the peer before this task resumed.
        throw SignalClientError.relayClosed
    }

    /// Asks the server to coordinate a hole punch with `peer` in `swarm` (docs/nat.md): both ends then get a
    /// `.punch` event. Refusals (the peer's client cannot punch, the pair asked less than 5 s ago) are logged only.
    /// `spray`: this side's NAT is symmetric; ask for a spray punch (docs/nat.md, "Spray punching").
    public func requestPunch(swarm: SwarmID, peer: DeviceID, spray: Bool = false) async {
        guard link.isReady else { return }
        let id = nextRequestID
        nextRequestID += 1
        if pendingPunchRequests.count >= 64 { pendingPunchRequests.remove(pendingPunchRequests.min() ?? id) }
        pendingPunchRequests.insert(id)
        await send(.punchRequest(.init(id: id, swarm: swarm, peer: peer, spray: spray ? true : nil)))
    }

    /// Whether this client takes another probing part of a spray punch now (and counts it).
    func acceptSprayProbe(now: ContinuousClock.Instant) -> Bool {
        sprayProbeTimes.removeAll { now - $0 >= Self.sprayProbeWindow }
        guard sprayProbeTimes.count < Self.maxSprayProbes else { return false }
        sprayProbeTimes.append(now)
        return true
    }

    /// Tells the server how a punch this client asked for ended (for its metrics).
    public func reportPunch(id: UInt32, connected: Bool) async {
        await send(.punchResult(.init(id: id, connected: connected)))
    }

    /// The swarms this client is asked to be in.
    public var joinedSwarms: [SwarmID] { Array(memberships.keys) }
}
