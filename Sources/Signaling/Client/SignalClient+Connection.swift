import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import NIOSSL
public import SignalingProtocol

extension SignalClient {
    /// One connection attempt, served until it ends. Returns whether the connection got authenticated.
    func connectOnce() async -> Bool {
        do {
            var tls: TLSConfiguration?
            var wsConfiguration = WebSocketClientConfiguration(
                maxFrameSize: configuration.maxFrameSize, closeTimeout: .seconds(2))
            if let pin = configuration.pinnedCertificateSHA256 {
                guard let url = URL(string: configuration.url), let host = url.host else {
                    throw SignalClientError.badPin
                }
                tls = try await CertificatePinning.tlsConfiguration(host: host, port: url.port ?? 443, fingerprint: pin)
                // SNI cannot carry an IP address; with a pin the name is not checked, so any name will do.
                if host.allSatisfy({ $0.isNumber || $0 == "." || $0 == ":" }) {
                    wsConfiguration.sniHostname = "localhost"
                }
            }
            connectionTLS = tls
            try await WebSocketClient.connect(
                url: configuration.url, configuration: wsConfiguration, tlsConfiguration: tls, logger: logger
            ) { inbound, outbound, _ in
                try await self.serve(inbound: inbound, outbound: outbound)
            }
        } catch let error as WebSocketClientError where error == .webSocketUpgradeFailed {
            // Not a transient failure: the server answered, but not as a harp signaling endpoint. Said at once, with
            // what to fix, instead of a silent wait for a join that cannot come.
            let hint = "check the URL: the endpoint is usually /v1/ws (ws://HOST:PORT/v1/ws, wss:// with TLS)"
            logger.warning(
                "the signaling server refused the WebSocket upgrade",
                metadata: ["signal.url": "\(configuration.url)", "hint": "\(hint)"])
        } catch {
            logger.debug("connection ended", metadata: ["error": "\(error)"])
        }
        return detach()
    }

    /// Reads the connection: control messages go to the actor, relay bytes to their stream's queue (waiting when
    /// that queue is full, which stops reading the socket).
    nonisolated func serve(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        await attach(outbound)
        // The client speaks first (see Message.Open): the server answers with the challenge.
        try await outbound.write(.text(MessageCodec.encode(.open(.init(version: Signaling.protocolVersion)))))
        for try await message in inbound.messages(maxSize: configuration.maxFrameSize) {
            switch message {
            case .text(let text):
                guard let decoded = try? MessageCodec.decode(text, maxBytes: configuration.maxFrameSize) else {
                    throw SignalClientError.badServerMessage
                }
                await receive(decoded)
            case .binary(var buffer):
                guard let stream = buffer.readInteger(as: UInt32.self) else { throw SignalClientError.badServerMessage }
                if let queue = await relayQueue(stream) { await queue.push(buffer) }
            }
        }
    }

    private func attach(_ outbound: WebSocketOutboundWriter) {
        link.attached(outbound)
    }

    private func relayQueue(_ stream: UInt32) -> ByteQueue? {
        relays[stream]?.queue
    }

    /// Cleans up after a connection: pending requests fail, relay streams end, joins will be re-sent.
    private func detach() -> Bool {
        let wasReady = link.detached()
        pendingJoins.removeAll()
        pendingRelayRequests.removeAll()
        relayRequestTargets.removeAll()
        requestWaiters.failAll(SignalClientError.disconnected)
        for relay in relays.values { relay.queue.finish() }
        relays.removeAll()
        if wasReady { emit(.disconnected) }
        return wasReady
    }

    func send(_ message: Message) async {
        await paced()
        await write(message)
    }

    /// Waits for this message's turn under `Configuration.messagesPerSecond`: the turns are handed out in call order,
    /// so messages keep their order.
    func paced() async {
        let turn = pacer.reserve(at: ContinuousClock.now)
        if turn > ContinuousClock.now { try? await Task.sleep(until: turn) }
    }

    private func write(_ message: Message) async {
        guard let outbound = link.outbound else { return }
        do {
            try await outbound.write(.text(MessageCodec.encode(message)))
        } catch {
            logger.debug("write failed", metadata: ["message.type": "\(message.type)"])
        }
    }

    /// Sends the join for `swarm` if connected (otherwise it goes out after the next welcome).
    func sendJoin(_ swarm: SwarmID) async {
        guard link.ready != nil, memberships[swarm] != nil else { return }
        await awaitProbe()
        // The turn first: the proof signs the connection's nonce, which a reconnect during the wait replaces.
        await paced()
        guard let (_, nonce) = link.ready, let membership = memberships[swarm] else { return }
        let signature: [UInt8]
        do {
            signature = try membership.signer.sign(
                Proofs.joinMessage(nonce: nonce, device: device.publicKey, swarm: swarm))
        } catch {
            logger.error("swarm signer failed", metadata: ["swarm.id": "\(swarm.hex)"])
            return
        }
        let id = nextRequestID
        nextRequestID += 1
        pendingJoins[id] = swarm
        let addresses = Self.announced(
            membership, observed: observed, mapping: listenPortMapping, nat: natMapping,
            loopback: configuration.announceLoopbackReflexive)
        await write(.join(.init(id: id, swarm: swarm, signature: HexBytes(signature), addresses: addresses)))
    }

    /// What a join announces: the membership's addresses, then (when the server told us our reflexive address and
    /// the membership names its listening port) a `reflexive@` candidate, unless an address with that host is
    /// already there (a peer with a public address sees itself). At most ``maxAnnounced`` entries.
    /// A loopback observation (the server runs on this host) says nothing about a NAT and is left out, unless
    /// `loopback` (tests on one host), and so is any behind a symmetric NAT (`nat`, docs/nat.md). The port is
    /// `reflexive`'s.
    static func announced(
        _ membership: Membership, observed: ObservedAddress?, mapping: ObservedAddress? = nil,
        nat: NATMapping? = nil, loopback: Bool = false
    ) -> [String] {
        var addresses = Array(membership.addresses.prefix(maxAnnounced))
        guard addresses.count < maxAnnounced,
            let reflexive = reflexive(
                observed: observed, mapping: mapping, nat: nat, listening: membership.reflexivePort,
                loopback: loopback)
        else { return addresses }
        let hosts = Set(addresses.compactMap { Candidate(text: $0)?.host })
        guard !hosts.contains(reflexive.host) else { return addresses }
        if Candidate(text: reflexive.text) != nil { addresses.append(reflexive.text) }
        return addresses
    }

    /// The reflexive candidate of listening port `listening`: the observed address, with the port the server saw a
    /// connection from the listening port come from (`mapping`, when it names the same address: a NAT that does not
    /// keep port numbers) or else the listening port. None without an observation or a listening port, for a
    /// loopback observation unless `loopback`, or behind a symmetric NAT (its port serves only the server's flow).
    static func reflexive(
        observed: ObservedAddress?, mapping: ObservedAddress?, nat: NATMapping?, listening: UInt16?, loopback: Bool
    ) -> Candidate? {
        guard let observed, let listening, listening != 0, loopback || !observed.isLoopback,
            nat?.isSymmetric != true
        else { return nil }
        let mapped = mapping.flatMap { $0.address == observed.address ? $0.port : nil }
        return Candidate(kind: .reflexive, host: observed.address, port: mapped ?? listening)
    }

    /// The reflexive candidate the joins announce for `listenPort` now (`status`).
    public func reflexiveCandidate(listenPort: UInt16) -> Candidate? {
        Self.reflexive(
            observed: observed, mapping: listenPortMapping, nat: natMapping, listening: listenPort,
            loopback: configuration.announceLoopbackReflexive)
    }

    /// One control message from the server.
    func receive(_ message: Message) async {
        switch message {
        case .challenge(let challenge):
            guard challenge.version == Signaling.protocolVersion,
                case .send(let outbound, let nonce) = link.challenge(nonce: challenge.nonce.bytes)
            else { return await protocolError("unexpected challenge") }
            do {
                let me = device.publicKey
                let signature = try device.sign(Proofs.helloMessage(nonce: nonce, device: me))
                let proof = configuration.joinKey.map { Proofs.joinKeyProof(joinKey: $0, nonce: nonce, device: me) }
                let hello = Message.Hello(
                    version: Signaling.protocolVersion, device: me, signature: HexBytes(signature),
                    joinProof: proof.map(HexBytes.init),
                    features: [Message.Hello.punchFeature, Message.Hello.sprayFeature])
                try await outbound.write(.text(MessageCodec.encode(.hello(hello))))
            } catch {
                logger.error("hello not sent", metadata: ["error.type": "\(String(reflecting: type(of: error)))"])
            }
        case .welcome(let welcome):
            guard case .send = link.welcome() else { return await protocolError("unexpected welcome") }
            observed = welcome.observed
            welcomes += 1
            listenPortMapping = nil
            natMapping = nil
            probePort = welcome.validProbePort
            probing?.cancel()
            probing = nil
            probeDone = nil
            startProbe()
            logger.debug(
                "connected to signaling server",
                metadata: [
                    "reflexive.address": "\(observed?.address ?? "-")", "reflexive.port": "\(observed?.port ?? 0)",
                ])
            emit(.connected)
            // The rejoins wait for their turns under the message rate (minutes for thousands of swarms): in a task
            // of their own, so that this connection's messages are read meanwhile. A reconnect replaces it; each join
            // checks that the link it was meant for is still the ready one.
            rejoining?.cancel()
            let swarms = Array(memberships.keys)
            rejoining = Task { [weak self] in
                for swarm in swarms {
                    guard !Task.isCancelled else { return }
                    await self?.sendJoin(swarm)
                }
            }
        case .joined(let joined):
            guard pendingJoins.removeValue(forKey: joined.id) == joined.swarm, memberships[joined.swarm] != nil else {
                return
            }
            emit(.joined(swarm: joined.swarm, peers: joined.peers))
            joinWaiters.resume(joined.swarm, with: .success(joined.peers))
        case .peerJoined(let event):
            if memberships[event.swarm] != nil { emit(.peerJoined(swarm: event.swarm, peer: event.peer)) }
        case .peerLeft(let event):
            if memberships[event.swarm] != nil { emit(.peerLeft(swarm: event.swarm, device: event.device)) }
        case .relayOpened(let opened):
            guard pendingRelayRequests.remove(opened.id) != nil,
                let target = relayRequestTargets.removeValue(forKey: opened.id)
            else { return }
            relays[opened.stream] = makeRelay(opened.stream, swarm: target.swarm, peer: target.peer)
            requestWaiters.resume(opened.id, with: .success(opened.stream))
        case .relayIncoming(let incoming):
            let relay = makeRelay(incoming.stream, swarm: incoming.swarm, peer: incoming.peer)
            relays[incoming.stream] = relay
            emit(.relayIncoming(relay))
        case .relayClosed(let ref):
            relays.removeValue(forKey: ref.stream)?.queue.finish()
        case .punch(let punch):
            guard memberships[punch.swarm] != nil else { return }
            let delay = Duration.milliseconds(min(max(punch.delayMs, 0), 5000))
            var spray: SprayPart?
            switch punch.spray?.role {
            case nil: spray = nil
            case .open: spray = .open
            case .probe:
                // This side dials up to `SprayPunch.maxProbes` ports of the named address: only an IPv4 literal that
                // can be a NAT's public side, and only a few times in a while whatever the server asks
                // (`acceptSprayProbe`).
                guard let host = punch.spray?.host,
                    IPv4Literal.isSprayTarget(host, loopbackServer: observed?.isLoopback ?? false),
                    acceptSprayProbe(now: .now)
                else {
                    logger.debug("a spray punch refused", metadata: ["swarm.id": "\(punch.swarm.hex)"])
                    return
                }
                spray = .probe(host: host)
            }
            emit(.punch(swarm: punch.swarm, peer: punch.peer, delay: delay, id: punch.id, spray: spray))
        case .error(let error):
            handleError(error)
        case .open, .hello, .join, .leave, .relayOpen, .relayClose, .punchRequest, .punchResult:
            await protocolError("client message sent by the server")
        }
    }

    private func handleError(_ error: Message.ErrorMessage) {
        if let id = error.id, let swarm = pendingJoins.removeValue(forKey: id) {
            memberships[swarm] = nil
            logger.info("join refused", metadata: ["swarm.id": "\(swarm.hex)", "error.code": "\(error.code.rawValue)"])
            emit(.refused(swarm: swarm, code: error.code))
            joinWaiters.resume(swarm, with: .failure(SignalClientError.refused(error.code)))
        } else if let id = error.id, pendingPunchRequests.remove(id) != nil {
            logger.debug("punch refused", metadata: ["error.code": "\(error.code.rawValue)"])
        } else if let id = error.id, pendingRelayRequests.remove(id) != nil {
            relayRequestTargets[id] = nil
            requestWaiters.resume(id, with: .failure(SignalClientError.refused(error.code)))
        } else {
            logger.info("server error", metadata: ["error.code": "\(error.code.rawValue)"])
            if error.code == .banned, let seconds = error.retryAfter, seconds.isFinite, seconds > 0 {
                retryAfter = .seconds(min(seconds, 86_400))
            }
            // Another client took over, or this client's join key is wrong: retrying cannot help (and failed
            // join-key proofs get the address banned), so the client stops.
            if error.code == .replaced || error.code == .badJoinKey { replaced = true }
            emit(.serverError(code: error.code, message: error.message))
        }
    }

    private func protocolError(_ reason: String) async {
        logger.warning("protocol error from server", metadata: ["reason": "\(reason)"])
        try? await link.outbound?.close(.protocolError, reason: nil)
    }

    private func makeRelay(_ stream: UInt32, swarm: SwarmID, peer: DeviceID) -> RelayStream {
        RelayStream(
            id: stream, swarm: swarm, peer: peer, bufferLimit: configuration.relayBufferBytes,
            maxPayload: configuration.maxFrameSize - RelayFrame.headerSize,
            sender: { stream, payload in try await self.sendRelay(stream, payload) },
            closer: { stream in await self.closeRelay(stream) })
    }

    private func sendRelay(_ stream: UInt32, _ payload: ByteBuffer) async throws {
        guard relays[stream] != nil, let (outbound, _) = link.ready else { throw SignalClientError.relayClosed }
        var frame = ByteBuffer()
        frame.reserveCapacity(RelayFrame.headerSize + payload.readableBytes)
        frame.writeInteger(stream)
        frame.writeImmutableBuffer(payload)
        try await outbound.write(.binary(frame))
    }

    private func closeRelay(_ stream: UInt32) async {
        guard let relay = relays.removeValue(forKey: stream) else { return }
        relay.queue.finish()
        await send(.relayClose(.init(stream: stream)))
    }
}

extension SignalClient {
    /// Asks the server, once per connection, where a connection from the listening port comes from
    /// (`ReflexiveProbe`), when a membership names that port and the server reported an observation that says
    /// something about a NAT (not loopback, unless `announceLoopbackReflexive`).
    func startProbe() {
        guard probing == nil, link.ready != nil, let observed,
            configuration.announceLoopbackReflexive || !observed.isLoopback,
            let port = memberships.values.lazy.compactMap(\.reflexivePort).first(where: { $0 != 0 })
        else { return }
        let (url, tls, welcome) = (configuration.url, connectionTLS, welcomes)
        let second = probePort.flatMap { Self.url(of: url, port: $0) }
        let done = OneShot<Void>()
        probeDone = done
        probing = Task { [weak self] in
            defer { done.fulfil(()) }
            let mapping: ObservedAddress?
            do {
                mapping = try await ReflexiveProbe.observe(
                    url: url, localPort: Int(port), tls: tls, overIPv6: observed.isIPv6)
            } catch {
                await self?.logProbeFailure(error)
                return
            }
            // Both from the listening port: the second to another port of the server (plain HTTP). A NAT whose
            // mapping depends on the destination gives it another port.
            var other: ObservedAddress?
            if let second {
                do {
                    other = try await ReflexiveProbe.observe(
                        url: second, localPort: Int(port), tls: nil, overIPv6: observed.isIPv6)
                } catch {
                    await self?.logProbeFailure(error)
                }
            }
            await self?.probed(mapping, second: other, listenPort: port, welcome: welcome)
        }
    }

    /// Waits for this connection's probe, at most `probeWait`: a join that went out before it with the listening
    /// port would be the one a punch is arranged with (a peer asks for a punch as soon as it dials the reflexive
    /// candidate), and the corrected port would come too late for it. The probe takes a connection to the server
    /// and one request, so usually a few round trips; an unreachable probe costs the join `probeWait` once.
    func awaitProbe() async {
        _ = try? await probeDone?.value(timeout: Self.probeWait)
    }

    /// How long a join waits for the probe of the listening port's mapping.
    static let probeWait = Duration.milliseconds(500)

    private func logProbeFailure(_ error: any Error) {
        logger.debug(
            "no answer from the server about the listening port's mapping (an older server, or it is unreachable)",
            metadata: ["error": "\(error)"])
    }

    /// The probe answered (`second`: the second observation point's answer, if the server has one): when the NAT
    /// gave the listening port another number, every swarm is joined again with the reflexive candidate naming it;
    /// when the two observations differ (a symmetric NAT), without a reflexive candidate.
    func probed(
        _ mapping: ObservedAddress?, second: ObservedAddress? = nil, listenPort: UInt16, welcome: Int
    ) async {
        guard welcome == welcomes, let mapping, mapping.address == observed?.address else { return }
        let before = listenPortMapping?.port ?? listenPort
        let wasSymmetric = natMapping?.isSymmetric == true
        listenPortMapping = mapping
        if let second, let port = mapping.port, let other = second.port {
            natMapping =
                second.address == mapping.address && other == port
                ? .endpointIndependent : .dependent(ports: [port, other])
            if natMapping?.isSymmetric == true {
                logger.info(
                    """
                    this side's NAT gives each destination its own port (a symmetric NAT): a plain punch cannot reach \
                    it, a spray punch only from peers whose NAT keeps one port for every destination; a port mapping \
                    or a public address would let every peer in
                    """,
                    metadata: ["listen.port": "\(listenPort)", "seen.as": "\(port), \(other)"])
            }
        }
        let isSymmetric = natMapping?.isSymmetric == true
        // The joins below, and any waiting, go out with it now.
        probeDone?.fulfil(())
        logger.debug(
            "the server saw the listening port's connection",
            metadata: ["listen.port": "\(listenPort)", "observed": "\(mapping.address):\(mapping.port ?? 0)"])
        let portChanged = mapping.port != before
        if portChanged, !isSymmetric {
            logger.info(
                "the NAT maps the peer port to another number: announcing that one",
                metadata: ["listen.port": "\(listenPort)", "reflexive": "\(mapping.address):\(mapping.port ?? 0)"])
        }
        guard portChanged || isSymmetric != wasSymmetric else { return }
        for swarm in memberships.keys { await sendJoin(swarm) }
    }
}

extension SignalClient {
    /// The server's URL `url` (`ws`/`wss`) with another port and the plain `ws` scheme (the second observation point
    /// speaks plain HTTP); nil when `url` has no host.
    static func url(of url: String, port: Int) -> String? {
        guard var components = URLComponents(string: url), components.host != nil else { return nil }
        components.scheme = "ws"
        components.port = port
        components.path = "/"
        return components.string
    }
}
