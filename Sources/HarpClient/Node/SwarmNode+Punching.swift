internal import Logging
internal import NIOCore
internal import SignalingClient
internal import SignalingProtocol
internal import SwarmKit

/// Hole punching coordinated by the signaling server (docs/nat.md): when no candidate of a member answers, this side
/// asks the server for a punch; the server sends `punch` to both ends with delays timed from each end's round trip,
/// and both dial the other's reflexive candidates from their listening port at the same moment (TCP simultaneous
/// open). The Noise roles follow the device keys' order (both ends are TCP clients); the swarm's tie-break between
/// duplicate connections is unchanged. The relay stays the last resort.
extension SwarmNode {
    /// How one punch with a peer is going, as this side sees it.
    enum PunchProgress {
        case running
        case done(connected: Bool)
    }

    /// Attempts per punch, and the connect timeout of each (a NAT that drops the early SYN lets the retransmitted
    /// one through once the other side's SYN opened the mapping: the kernel retransmits after 1 s, so one attempt
    /// covers one retransmission). A pair that cannot punch reaches the relay about 3 s later than before.
    static var punchAttempts: Int { 2 }
    static var punchConnectTimeout: TimeAmount { .milliseconds(1500) }

    /// Asks the server for a punch with `device` and waits for its outcome: the `punch` must arrive within 1.5 s
    /// (else the server refused: the peer's client cannot punch, or the pair asked a moment ago), then its attempts
    /// must end. Whether the peer is connected afterwards.
    func punchConnects(_ swarm: SwarmID, to device: [UInt8]) async -> Bool {
        guard let signal, listenPort != 0, let peer = PublicKey32(bytes: device) else { return false }
        punchProgress[device] = nil
        punchRequested.insert(device)
        // Behind a symmetric NAT only a spray punch can work (docs/nat.md, "Spray punching").
        let spray = await symmetricNATReason() != nil
        await signal.requestPunch(swarm: swarm, peer: peer, spray: spray)
        let started = ContinuousClock.now
        while punchProgress[device] == nil {
            if ContinuousClock.now - started > .milliseconds(1500) {
                punchRequested.remove(device)
                return false
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        while case .running = punchProgress[device], ContinuousClock.now - started < .seconds(20) {
            try? await Task.sleep(for: .milliseconds(50))
        }
        return hasDirectLink(swarm, to: device)
    }

    /// How much later than the initiator the responder dials in a punch of a pair already on the relay.
    static var upgradeResponderLag: Duration { .milliseconds(250) }

    /// Whether `device` is connected in `swarm` through the relay.
    func hasRelayedLink(_ swarm: SwarmID, to device: [UInt8]) -> Bool {
        linkTable.all.contains { $0.swarm == swarm && $0.device == device && $0.path == .relayed }
    }

    /// Whether a punch with `device` is under way (an inbound connection from it meanwhile is the punch's).
    func isPunching(_ device: [UInt8]) -> Bool {
        if case .running = punchProgress[device] { return true }
        return false
    }

    /// Whether a connection to `device` in `swarm` goes around the relay (direct, mapped or punched).
    func hasDirectLink(_ swarm: SwarmID, to device: [UInt8]) -> Bool {
        linkTable.all.contains { $0.swarm == swarm && $0.device == device && $0.path != .relayed }
    }

    /// The waits before each background punch of a pair that is on the relay (docs/nat.md, "Relay, then upgrade"):
    /// five attempts over about two and a half minutes, each at least the server's 5 s between two punches of a pair.
    static var upgradeDelays: [Duration] { [.seconds(5), .seconds(10), .seconds(20), .seconds(40), .seconds(80)] }
    /// The wait before a first attempt at once: the relayed link's handshake has a moment to end.
    static var soonUpgradeDelay: Duration { .milliseconds(200) }

    /// Starts ``upgradeRelayed(_:to:delays:)`` as one of the swarm's tasks (`close` cancels it); `soon`: the first
    /// attempt at once (a pair whose relay this side did not open after a failed punch of its own).
    func startUpgrade(_ swarm: SwarmID, to device: [UInt8], soon: Bool = false) {
        guard entries[swarm] != nil else { return }
        let delays = soon ? [Self.soonUpgradeDelay] + Self.upgradeDelays : Self.upgradeDelays
        let task = Task { [weak self] in
            guard let self else { return }
            await self.upgradeRelayed(swarm, to: device, delays: delays)
        }
        entries[swarm]?.tasks.append(task)
    }

    /// Relay, then upgrade: while `device` is reached through the relay only, asks the server for a punch after each
    /// of ``upgradeDelays``. A punched connection replaces the relayed one in the swarm (the same peer's new
    /// connection: its tie-break keeps the punched one on both ends, `SwarmEngine.handOver` moves the requests in
    /// flight to it and keeps the blocks already received). Stops when the pair is connected otherwise, is not
    /// connected at all, or the swarm closes.
    func upgradeRelayed(_ swarm: SwarmID, to device: [UInt8], delays: [Duration] = upgradeDelays) async {
        for (attempt, delay) in delays.enumerated() {
            try? await Task.sleep(for: delay)
            guard !Task.isCancelled, await isConnected(swarm, to: device), !hasDirectLink(swarm, to: device) else {
                return
            }
            if await punchConnects(swarm, to: device) {
                logger.debug(
                    "a relayed peer is now reached through a punched connection",
                    metadata: [
                        "peer": "\(PublicKey32(bytes: device).map { "\($0)" } ?? "?")", "attempt": "\(attempt + 1)",
                    ])
                return
            }
        }
    }

    /// Carries out a `punch` from the server: after `delay`, dials the peer's reflexive candidates (at most two)
    /// from the listening port, up to ``punchAttempts`` times, or takes this side's part of a spray punch
    /// (``sprayPunch(_:entry:peer:delay:part:)``); serves the connection as `punched`. Reports the outcome to the
    /// server when this side asked.
    func punch(_ swarm: SwarmID, peer: PeerInfo, delay: Duration, id: UInt32, spray: SignalClient.SprayPart?) async {
        let device = peer.device.bytes
        guard let entry = entries[swarm], listenPort != 0, device != identity.publicKey else { return }
        punchProgress[device] = .running
        if let spray {
            let connected = await sprayPunch(swarm, entry: entry, peer: peer, delay: delay, part: spray)
            return await punchEnded(device, id: id, connected: connected)
        }
        let targets = CandidateOrder.order(peer.addresses, isOnLink: { _ in false })
            .filter { $0.kind == .reflexive }.prefix(2)
        let role: PeerChannel.Role =
            identity.publicKey.lexicographicallyPrecedes(device) ? .initiator : .responder
        logger.debug(
            "punching",
            metadata: ["peer": "\(peer.device)", "delay.ms": "\(delay / .milliseconds(1))", "role": "\(role)"])
        // A pair on the relay punches again: if the responder's router lets the initiator's SYN in before the
        // responder's own SYN has left (a NAT with endpoint-independent filtering), the responder's listener takes it
        // and the connection works as a dialled one (it carries the preamble, `PeerConnection.punch`); the other way
        // round, the initiator's listener would wait for a preamble the responder never sends. So the responder lags a
        // little, making the harmless order the likely one.
        let lag = role == .responder && hasRelayedLink(swarm, to: device) ? Self.upgradeResponderLag : .zero
        try? await Task.sleep(for: delay + lag)
        var connected = false
        attempts: for attempt in 0..<Self.punchAttempts {
            for target in targets {
                // A pair on the relay punches too (`upgradeRelayed`): only a connection around the relay counts.
                if hasDirectLink(swarm, to: device) {
                    connected = true
                    break attempts
                }
                var configuration = peerConfiguration(entry, expectedKey: device)
                configuration.connectTimeout = Self.punchConnectTimeout
                do {
                    let connection = try await PeerConnection.punch(
                        host: target.host, port: Int(target.port), localPort: listenPort, role: role,
                        configuration: configuration)
                    logger.debug("punched through", metadata: ["peer": "\(peer.device)", "attempt": "\(attempt + 1)"])
                    serve(
                        connection, in: swarm, entry.swarm, target: "punch:\(target.hostAndPort)",
                        address: PeerAddress(hostAndPort: target.hostAndPort), path: .punched,
                        initiatedByUs: role == .initiator)
                    connected = true
                    break attempts
                } catch {
                    logger.debug(
                        "a punch attempt failed",
                        metadata: ["peer": "\(peer.device)", "attempt": "\(attempt + 1)", "error": "\(error)"])
                }
            }
            try? await Task.sleep(for: .milliseconds(100 * (attempt + 1)))
        }
        await punchEnded(device, id: id, connected: connected)
    }

    private func punchEnded(_ device: [UInt8], id: UInt32, connected: Bool) async {
        punchProgress[device] = .done(connected: connected)
        if punchRequested.remove(device) != nil, let signal {
            await signal.reportPunch(id: id, connected: connected)
        }
    }

    /// This side's part of a spray punch (docs/nat.md, "Spray punching"), after `delay`: behind the symmetric NAT
    /// (`open`), many connections to the peer's first IPv4 reflexive candidate; on the other side (`probe`), dials of
    /// random ports of the address the server saw the first side at, from the listening port. The side behind the
    /// symmetric NAT is the Noise initiator and sends the swarm preamble, so a connection that its NAT's neighbour
    /// lets straight into the listener (endpoint-independent filtering) works as an ordinary dialled one. Whether a
    /// connection to the peer is made.
    func sprayPunch(
        _ swarm: SwarmID, entry: Entry, peer: PeerInfo, delay: Duration, part: SignalClient.SprayPart
    ) async -> Bool {
        let device = peer.device.bytes
        try? await Task.sleep(for: delay)
        let socket: CInt?
        let role: PeerChannel.Role
        var address: PeerAddress?
        switch part {
        case .open:
            guard
                let target = CandidateOrder.order(peer.addresses, isOnLink: { _ in false })
                    .first(where: { $0.kind == .reflexive && IPv4Literal.isValid($0.host) }),
                let bytes = IPv4Literal.parse(target.host)
            else { return false }
            role = .initiator
            address = PeerAddress(hostAndPort: target.hostAndPort)
            socket = await SprayPunch.open(to: bytes, port: target.port)
        case .probe(let host):
            guard let bytes = IPv4Literal.parse(host), let port = UInt16(exactly: listenPort) else { return false }
            role = .responder
            socket = await SprayPunch.probe(bytes, localPort: port)
        }
        guard let socket else {
            logger.debug("a spray punch found no port", metadata: ["peer": "\(peer.device)", "part": "\(part)"])
            return hasDirectLink(swarm, to: device)
        }
        do {
            let connection = try await PeerConnection.adopt(
                socket: socket, role: role, configuration: peerConfiguration(entry, expectedKey: device))
            logger.debug("a spray punch got through", metadata: ["peer": "\(peer.device)", "part": "\(part)"])
            serve(
                connection, in: swarm, entry.swarm, target: "spray:\(peer.device)", address: address, path: .punched,
                initiatedByUs: role == .initiator)
            return true
        } catch {
            logger.debug(
                "a spray punch's connection failed", metadata: ["peer": "\(peer.device)", "error": "\(error)"])
            return hasDirectLink(swarm, to: device)
        }
    }
}
