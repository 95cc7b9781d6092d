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
        await signal.requestPunch(swarm: swarm, peer: peer)
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
        guard let entry = entries[swarm] else { return false }
        return await entry.swarm.isConnected(to: device)
    }

    /// Carries out a `punch` from the server: after `delay`, dials the peer's reflexive candidates (at most two)
    /// from the listening port, up to ``punchAttempts`` times; serves the connection as `punched`. Reports the outcome
    /// to the server when this side asked.
    func punch(_ swarm: SwarmID, peer: PeerInfo, delay: Duration, id: UInt32) async {
        let device = peer.device.bytes
        guard let entry = entries[swarm], listenPort != 0, device != identity.publicKey else { return }
        punchProgress[device] = .running
        let targets = CandidateOrder.order(peer.addresses, isOnLink: { _ in false })
            .filter { $0.kind == .reflexive }.prefix(2)
        let role: PeerChannel.Role =
            identity.publicKey.lexicographicallyPrecedes(device) ? .initiator : .responder
        logger.debug(
            "punching",
            metadata: ["peer": "\(peer.device)", "delay.ms": "\(delay / .milliseconds(1))", "role": "\(role)"])
        try? await Task.sleep(for: delay)
        var connected = false
        attempts: for attempt in 0..<Self.punchAttempts {
            for target in targets {
                if await entry.swarm.isConnected(to: device) {
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
        punchProgress[device] = .done(connected: connected)
        if punchRequested.remove(device) != nil, let signal {
            await signal.reportPunch(id: id, connected: connected)
        }
    }
}
