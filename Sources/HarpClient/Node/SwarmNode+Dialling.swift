internal import ChunkStore
internal import Foundation
internal import Logging
internal import NIOCore
internal import SignalingClient
internal import SignalingProtocol
internal import SwarmKit

/// The dial policy: the members signaling names are dialled once each (a newcomer dials the members, and is dialled
/// back after a moment in case it cannot be reached); a peer that cannot be reached directly is reached through a
/// relay stream of the signaling server; relayed connections from others are accepted when their Noise handshake
/// proves the device key the signaling server names.
extension SwarmNode {
    func handle(_ event: SignalClient.Event) {
        switch event {
        case .joined(let swarm, let peers):
            joins[swarm] = peers.count
            for peer in peers { connect(swarm, to: peer) }
        case .peerJoined(let swarm, let peer):
            // The newcomer dials the members; dial it too after a moment in case it cannot (the swarm keeps one
            // connection per pair when both succeed). Behind a symmetric NAT at once: this side announces no
            // reflexive candidate, so the newcomer cannot reach it but through the relay, and only this side can dial
            // the newcomer's port mapping or ask for a spray punch.
            Task { [weak self] in
                guard let self else { return }
                if await self.symmetricNATReason() == nil { try? await Task.sleep(for: .seconds(2)) }
                await self.connectIfNeeded(swarm, to: peer)
            }
        case .refused(let swarm, let code):
            logger.warning("the signaling server refused a join", metadata: ["swarm": "\(swarm)", "code": "\(code)"])
        case .serverError(let code, let message):
            logger.warning("signaling server error", metadata: ["code": "\(code)", "message": "\(message)"])
        case .connected, .disconnected, .peerLeft:
            break
        case .relayIncoming(let stream):
            Task { await self.acceptRelay(stream) }
        case .punch(let swarm, let peer, let delay, let id, let spray):
            Task { await self.punch(swarm, peer: peer, delay: delay, id: id, spray: spray) }
        }
    }

    func connectIfNeeded(_ swarm: SwarmID, to peer: PeerInfo) async {
        guard let entry = entries[swarm] else { return }
        let device = peer.device.bytes
        guard await entry.swarm.isConnected(to: device) else { return connect(swarm, to: peer) }
        // A direct connection to the peer made for another swarm replaces the relayed link as a mapped dial would.
        if hasRelayedLink(swarm, to: device), !hasDirectLink(swarm, to: device),
            await attachThroughTrunk(swarm, to: device, upgrading: true)
        {
            return
        }
        // Relay, then upgrade through a mapping: a member that announces a port mapping after this pair went to the
        // relay (its router granted it late, or it was renewed at another port) is dialled there. The swarm keeps the
        // mapped connection and hands the relayed one's requests over to it (a connection around the relay always
        // replaces a relayed one).
        guard hasRelayedLink(swarm, to: device), !hasDirectLink(swarm, to: device) else { return }
        let mapped = CandidateOrder.order(peer.addresses, isOnLink: LocalRoute.isOnLink).filter { $0.kind == .mapped }
        for candidate in mapped {
            let outcome = await dial(
                swarm, host: candidate.host, port: Int(candidate.port), expectedKey: device, path: .mapped,
                relayOnFailure: false, upgrading: true)
            if outcome == .connected {
                logger.info(
                    "a relayed peer is now reached through its port mapping",
                    metadata: ["peer": "\(peer.device)", "address": "\(candidate.host):\(candidate.port)"])
                return
            }
        }
    }

    /// Dials a member the signaling server named at each of its candidates, in ``CandidateOrder`` (a local one on our
    /// subnet first, then mapped, reflexive, other local), each started ``candidateStagger`` after the one before
    /// unless the peer is connected by then (as Happy Eyeballs does: a candidate whose NAT drops the SYN costs a
    /// connect timeout, which the next ones do not wait for); the relay when none answers.
    func connect(_ swarm: SwarmID, to peer: PeerInfo) {
        guard peer.device.bytes != identity.publicKey else { return }
        let candidates = CandidateOrder.order(peer.addresses, isOnLink: LocalRoute.isOnLink)
        let device = peer.device.bytes
        Task {
            // A connection to that device for another swarm carries this one too: no dial, no punch. Another swarm's
            // dial to it under way is waited for, then attached to.
            repeat {
                if await self.attachThroughTrunk(swarm, to: device) { return }
            } while !(await self.claimDial(device))
            let symmetric = await self.symmetricNATReason() != nil
            // A reflexive candidate behind a NAT that filters (most do) answers only to a punch, and a NAT that drops
            // unsolicited SYNs makes its plain dial wait for the connect timeout: the punch is asked for at the moment
            // the first reflexive candidate is dialled, not after it failed. Behind a symmetric NAT the punch is a
            // spray punch (docs/nat.md, "Spray punching"), which needs the peer's reflexive candidate as much.
            let punchAt = candidates.firstIndex { $0.kind == .reflexive }
            let reached = await withTaskGroup(of: DialOutcome.self) { group in
                for (index, candidate) in candidates.enumerated() {
                    group.addTask {
                        if index > 0 { try? await Task.sleep(for: Self.candidateStagger * index) }
                        return await self.dial(
                            swarm, host: candidate.host, port: Int(candidate.port), expectedKey: device,
                            path: candidate.kind == .mapped ? .mapped : .direct, relayOnFailure: false)
                    }
                }
                if let punchAt {
                    group.addTask {
                        if punchAt > 0 { try? await Task.sleep(for: Self.candidateStagger * punchAt) }
                        if await self.isConnected(swarm, to: device) { return .skipped }
                        return await self.punchConnects(swarm, to: device) ? .connected : .failed
                    }
                }
                // Behind a symmetric NAT (docs/nat.md, "Which NAT is symmetric") a peer without a port mapping or a
                // reflexive candidate to spray-punch is reached directly only if its NAT lets in a SYN from anywhere,
                // which the dials above find out: the relay does not wait for their timeouts. A direct connection made
                // later replaces the relayed one.
                if symmetric, punchAt == nil, !candidates.isEmpty, !candidates.contains(where: { $0.kind == .mapped }) {
                    group.addTask {
                        // Cancelled when every dial failed sooner: the relay below then opens at once.
                        do { try await Task.sleep(for: Self.symmetricRelayDelay) } catch { return .early }
                        if await self.isConnected(swarm, to: device) { return .early }
                        let reason = await self.relayReason(device, candidates: candidates.count, punched: false)
                        await self.relay(swarm, to: device, reason: reason)
                        return .early
                    }
                }
                // The swarms waiting for this device attach to the first connection made, without waiting for the
                // other candidates' timeouts; if none is made (the relay carries one swarm per stream), they go on to
                // their own dials.
                let dials = candidates.count + (punchAt == nil ? 0 : 1)
                var reached = false
                var ended = 0
                for await outcome in group where outcome != .early {
                    ended += 1
                    if ended == dials { group.cancelAll() }
                    guard outcome != .failed else { continue }
                    if !reached { self.endDial(device) }
                    reached = true
                }
                if !reached { self.endDial(device) }
                return reached
            }
            guard !reached else { return }
            // A peer that announced neither a reflexive candidate nor a port mapping may sit behind a symmetric NAT,
            // and if this side's NAT keeps one port for every destination, that peer asks for a spray punch towards
            // us as soon as it sees us (docs/nat.md, "Spray punching"): it has a moment before the relay opens.
            if punchAt == nil, !symmetric, !candidates.contains(where: { $0.kind == .mapped }),
                await self.signal?.natMapping == .endpointIndependent
            {
                let started = ContinuousClock.now
                while ContinuousClock.now - started < Self.symmetricPeerGrace,
                    !(await self.isConnected(swarm, to: device))
                {
                    try? await Task.sleep(for: .milliseconds(50))
                }
                if await self.isConnected(swarm, to: device) { return }
            }
            await relay(
                swarm, to: device,
                reason: await self.relayReason(device, candidates: candidates.count, punched: punchAt != nil))
            // Relay, then upgrade: a peer that announced a reflexive candidate may be punched later (its NAT's
            // filtering, a punch that lost a race, a mapping that expired meanwhile).
            if punchAt != nil { self.startUpgrade(swarm, to: device) }
        }
    }

    /// How long a side behind a symmetric NAT dials a peer without a port mapping before it opens the relay too.
    static let symmetricRelayDelay = Duration.seconds(1)
    /// How long a side whose NAT keeps one port for every destination waits, before the relay, for a peer without a
    /// reflexive candidate or a mapping to reach it (a spray punch takes about a second in the testbed).
    static let symmetricPeerGrace = Duration.seconds(2)

    /// Why peers behind NATs cannot reach this side, when the signaling server saw its listening port as two
    /// ports from two of its ports (docs/nat.md, "Which NAT is symmetric"); nil otherwise.
    func symmetricNATReason() async -> String? {
        guard case .dependent(let ports) = await signal?.natMapping else { return nil }
        let seen = ports.map(String.init).joined(separator: " and ")
        return "this side's NAT is symmetric (the signaling server saw its peer port \(listenPort) as \(seen) from "
            + "two of its ports), so only a spray punch towards a peer's reflexive address can reach it; a port "
            + "mapping (UPnP, NAT-PMP or PCP) or a public address would"
    }

    /// Why a member is reached through the relay after its `candidates` did not answer (`status`, `--json`).
    func relayReason(_ device: [UInt8], candidates: Int, punched: Bool) async -> String {
        let tried = candidates == 1 ? "its address did not answer" : "none of its \(candidates) addresses answered"
        guard candidates > 0 else { return "the peer announced no address" }
        if let symmetric = await symmetricNATReason() {
            guard punched else { return "\(tried), and it announced no reflexive address to spray-punch: \(symmetric)" }
            if case .done = punchProgress[device] {
                return "\(tried), and the spray punch found none of this side's NAT's ports: \(symmetric)"
            }
            return "\(tried), and the signaling server arranged no spray punch (the peer's client cannot take part, or "
                + "the pair punched a moment ago): \(symmetric)"
        }
        guard punched else {
            return "\(tried), and it announced no reflexive address to punch through (a symmetric NAT announces none)"
        }
        if case .done = punchProgress[device] {
            return "\(tried), and the punch failed after \(Self.punchAttempts) attempts (a symmetric NAT on either "
                + "side, without a port mapping, or a NAT that drops or resets it)"
        }
        return "\(tried), and the signaling server arranged no punch (the peer's client cannot punch, or the pair "
            + "punched a moment ago)"
    }

    /// Whether a swarm is connected to the device `device`.
    func isConnected(_ swarm: SwarmID, to device: [UInt8]) async -> Bool {
        guard let entry = entries[swarm] else { return false }
        return await entry.swarm.isConnected(to: device)
    }

    /// The delay between starting the dials of one peer's successive candidates.
    static var candidateStagger: Duration { .milliseconds(250) }

    /// What became of a dial.
    enum DialOutcome {
        /// Connected (the swarm serves the connection now).
        case connected
        /// Nothing to do: already connected to that peer or address, being dialled, banned, or the swarm is closed.
        case skipped
        /// The connection or its handshake failed.
        case failed
        /// The relay opened early behind a symmetric NAT (or found no need to): not a connection other swarms may
        /// attach to.
        case early
    }

    /// Dials one peer of a swarm; the connection is served by the swarm until it ends. When the peer cannot be
    /// reached directly, `relayOnFailure` is set and its device key is known (from the signaling server), the
    /// connection goes through a relay stream of the signaling server instead. `upgrading`: the peer may be
    /// connected through the relay (then this dial would replace that connection); only a connection around the relay
    /// makes it skip.
    @discardableResult
    func dial(
        _ id: SwarmID, host: String, port: Int, expectedKey: [UInt8]?, path: ConnectionPath = .direct,
        relayOnFailure: Bool = true, upgrading: Bool = false
    ) async -> DialOutcome {
        let target = PeerAddress(hostAndPort: host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
        let key = target.map { "\($0.host):\($0.port)" } ?? "\(host):\(port)"
        guard let entry = entries[id], !entry.dialling.contains(key) else { return .skipped }
        if let expectedKey {
            if upgrading {
                if hasDirectLink(id, to: expectedKey) { return .skipped }
            } else if await entry.swarm.isConnected(to: expectedKey) {
                return .skipped
            }
            if await entry.swarm.isBanned(expectedKey) { return .skipped }
        }
        if !upgrading, let target, await entry.swarm.isConnected(toAddress: target) { return .skipped }
        guard entries[id]?.dialling.insert(key).inserted == true else { return .skipped }
        var configuration = peerConfiguration(entry, expectedKey: expectedKey)
        // A candidate behind a NAT that drops unsolicited SYNs costs this long before the next step (punch, relay).
        configuration.connectTimeout = .seconds(3)
        do {
            let connection = try await PeerConnection.connect(host: host, port: port, configuration: configuration)
            logger.debug("connected to a peer", metadata: ["address": "\(key)", "path": "\(path)"])
            serve(connection, in: id, entry.swarm, target: key, address: target, path: path)
            return .connected
        } catch {
            logger.debug("could not connect to a peer", metadata: ["address": "\(key)", "error": "\(error)"])
            dialEnded(id, target: key)
            if relayOnFailure, let expectedKey {
                await relay(id, to: expectedKey, reason: "its address \(key) did not answer")
            }
            return .failed
        }
    }

    /// Connects to a member through a relay stream of the signaling server (it forwards Noise ciphertext only).
    func relay(_ id: SwarmID, to device: [UInt8], reason: String) async {
        guard let signal, let entry = entries[id], let peer = PublicKey32(bytes: device) else { return }
        let target = "relay:\(peer)"
        guard !entry.dialling.contains(target), !(await entry.swarm.isConnected(to: device)),
            !(await entry.swarm.isBanned(device)), entries[id]?.dialling.insert(target).inserted == true
        else { return }
        do {
            let stream = try await signal.openRelay(swarm: id, to: peer)
            // A relay stream names its swarm in the relay request: no preamble.
            var configuration = peerConfiguration(entry, expectedKey: device)
            configuration.swarmSelector = nil
            // The relay carries one swarm per stream (the server accounts for it so).
            configuration.capabilities &= ~Hello.Capability.channels
            let connection = try await PeerConnection.over(
                stream: stream, role: .initiator, configuration: configuration,
                write: { try await stream.write($0) }, close: { await stream.close() })
            logger.debug("connected through the signaling server's relay", metadata: ["peer": "\(peer)"])
            serve(connection, in: id, entry.swarm, target: target, address: nil, path: .relayed, reason: reason)
        } catch {
            logger.debug("could not relay to a peer", metadata: ["peer": "\(peer)", "error": "\(error)"])
            dialEnded(id, target: target)
        }
    }

    /// A member that could not reach us directly opened a relay stream: the peer protocol runs over it as responder.
    /// The Noise handshake must prove the device key the signaling server names.
    func acceptRelay(_ stream: RelayStream) async {
        guard let entry = entries[stream.swarm] else { return await stream.close() }
        var configuration = peerConfiguration(entry, expectedKey: nil)
        configuration.capabilities &= ~Hello.Capability.channels
        do {
            let connection = try await PeerConnection.over(
                stream: stream, role: .responder, configuration: configuration,
                write: { try await stream.write($0) }, close: { await stream.close() })
            guard connection.session.remoteDeviceKey == stream.peer.bytes else {
                logger.warning("a relayed peer's device key is not the one the signaling server named")
                try? await connection.channel.channel.close()
                return
            }
            logger.debug("accepted a relayed connection", metadata: ["peer": "\(stream.peer)"])
            let symmetric = await symmetricNATReason().map { " (\($0))" } ?? ""
            let token = linkOpened(
                stream.peer.bytes, swarm: stream.swarm, path: .relayed,
                reason: "the peer could not reach this side directly and opened the relay\(symmetric)")
            // Behind a symmetric NAT the peer could not punch towards this side (it saw no reflexive candidate); a
            // spray punch asked from here may still get through: at once, then as any relayed pair upgrades.
            if !symmetric.isEmpty { startUpgrade(stream.swarm, to: stream.peer.bytes, soon: true) }
            await entry.swarm.run(connection, initiatedByUs: false, address: nil, relayed: true)
            linkClosed(token)
        } catch {
            logger.debug("a relayed connection failed", metadata: ["peer": "\(stream.peer)", "error": "\(error)"])
        }
    }

    func peerConfiguration(_ entry: Entry, expectedKey: [UInt8]?) -> PeerConfiguration {
        var configuration = PeerConfiguration(identity: identity, swarmKey: entry.keys.swarmKey)
        configuration.expectedRemoteDeviceKey = expectedKey
        configuration.listenPort = UInt16(listenPort)
        configuration.swarmSelector = entry.keys.swarmID
        // The entry as it is now: a finished fetch may have made the swarm an origin since `entry` was read. A direct
        // connection may carry the other swarms this node shares with the peer (`PeerTrunk`).
        configuration.capabilities =
            (entries[entry.keys.signalID]?.capabilities ?? entry.capabilities) | Hello.Capability.channels
        configuration.logger = logger
        return configuration
    }

    /// Serves a connection this side opened until it ends; then `target` may be dialled again.
    func serve(
        _ connection: PeerConnection, in id: SwarmID, _ swarm: Swarm, target: String, address: PeerAddress?,
        path: ConnectionPath, initiatedByUs: Bool = true, reason: String? = nil
    ) {
        let trunk = makeTrunk(connection, path: path)
        let token = linkOpened(connection.session.remoteDeviceKey, swarm: id, path: path, reason: reason)
        Task {
            await swarm.run(
                link: trunk.first, initiatedByUs: initiatedByUs, address: address, relayed: path == .relayed)
            self.linkClosed(token)
            self.dialEnded(id, target: target)
        }
    }

    /// The connection to `target` ended (or never started): it may be dialled again.
    func dialEnded(_ id: SwarmID, target: String) {
        entries[id]?.dialling.remove(target)
    }

    /// The host other peers should dial: the configured one, else the local address of the route to the signaling
    /// server (found with a connected UDP socket, which sends nothing), else 127.0.0.1.
    func advertiseHost() -> String {
        if let host = settings.advertiseHost { return host }
        if settings.listenHost != "0.0.0.0", settings.listenHost != "::" { return settings.listenHost }
        guard let url = settings.signalURL.flatMap(URL.init(string:)), let host = url.host else { return "127.0.0.1" }
        return LocalRoute.sourceAddress(toward: host) ?? "127.0.0.1"
    }
}
