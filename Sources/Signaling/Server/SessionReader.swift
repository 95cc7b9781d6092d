import Foundation
import HummingbirdWebSocket
import Logging
import NIOCore
import SignalingProtocol
import Synchronization

/// The reading half of a ``Session``: parses each message under the size and rate limits, asks the state machine
/// what it may do, and carries that out with the hub, the abuse store and the relay buckets.
struct SessionReader: Sendable {
    let context: SessionContext
    let remoteAddress: String
    let observed: ObservedAddress?
    let logger: Logger
    let state: Locked<SessionStateMachine>
    let outbox: AsyncStream<Outgoing>.Continuation
    let outbound: WebSocketOutboundWriter
    /// When the challenge was sent (the hello's arrival gives the round trip).
    private let challengeSent = Locked<ContinuousClock.Instant?>(nil)

    private var configuration: SignalServerConfiguration { context.configuration }

    func run(_ inbound: WebSocketInboundStream) async -> SessionExit {
        var rate = TokenBucket(rate: configuration.messagesPerSecond, burst: configuration.messageBurst)
        var frames = TokenBucket(rate: configuration.relayFramesPerSecond, burst: configuration.relayFrameBurst)
        do {
            for try await message in inbound.messages(maxSize: configuration.maxFrameSize) {
                switch message {
                case .text(let text):
                    guard rate.tryTake() else { return .violation(.rateLimited, "too many messages") }
                    let decoded: Message
                    do {
                        decoded = try MessageCodec.decode(text, maxBytes: configuration.maxJSONBytes)
                    } catch .tooLarge {
                        return .violation(.tooLarge, "message over \(configuration.maxJSONBytes) bytes")
                    } catch {
                        return .violation(.badMessage, "not a protocol message")
                    }
                    if let exit = try await handle(decoded) { return exit }
                case .binary(let buffer):
                    // Every binary frame is counted, whatever it carries: a sender over the frame rate is paused.
                    let wait = frames.take(1)
                    if wait > .zero { try await Task.sleep(for: wait) }
                    if let exit = try await relay(buffer, rate: &rate) { return exit }
                }
            }
            return .peerClosed
        } catch is CancellationError {
            return .peerClosed
        } catch {
            // Oversized frames and protocol errors surface here; the WebSocket layer already sent its close code.
            logger.debug("connection read failed", metadata: ["error.type": "\(String(reflecting: type(of: error)))"])
            return .violation(.badMessage, "frame refused by the WebSocket layer")
        }
    }

    private func send(_ message: Message) {
        outbox.yield(.message(message))
    }

    private func reply(_ id: UInt64?, _ code: SignalErrorCode, _ text: String, retryAfter: Double? = nil) {
        send(.error(.init(id: id, code: code, message: text, retryAfter: retryAfter)))
    }

    /// One control message; a non-nil result ends the session.
    private func handle(_ message: Message) async throws -> SessionExit? {
        switch message {
        case .open(let open):
            switch state.withLock({ $0.open(open) }) {
            case .protocolViolation:
                return .violation(.unexpected, "open was already received")
            case .refuse(let code):
                return .violation(code, "this server speaks protocol version \(Signaling.protocolVersion)")
            case .challenge(let nonce):
                if let exit = banned() { return exit }
                send(.challenge(.init(version: Signaling.protocolVersion, nonce: HexBytes(nonce))))
                let now = ContinuousClock.now
                challengeSent.withLock { $0 = now }
                return nil
            }
        case .hello(let hello):
            // The ban is checked before every proof, not only at `open`: connections opened before a ban get no
            // further guesses evaluated.
            if let exit = banned() { return exit }
            let writer = outbound
            let (outbox, remoteAddress, metrics) = (self.outbox, self.remoteAddress, context.metrics)
            let rtt = challengeSent.withLock { $0 }.map { ContinuousClock.now - $0 }
            let canPunch = hello.has(Message.Hello.punchFeature)
            let canSpray = canPunch && hello.has(Message.Hello.sprayFeature)
            let observedHost = observed?.address
            let action = state.withLock { machine in
                machine.hello(hello) { device in
                    SessionHandle(
                        id: metrics.nextConnectionID.wrappingAdd(1, ordering: .relaxed).oldValue, device: device,
                        remoteAddress: remoteAddress, outbox: outbox, rtt: rtt, canPunch: canPunch,
                        canSpray: canSpray, observedHost: observedHost,
                        binaryWriter: { try await writer.write(.binary($0)) })
                }
            }
            switch action {
            case .protocolViolation:
                return .violation(.unexpected, "hello was already accepted")
            case .refuse(.unsupportedVersion):
                // An old or newer client is not an attacker: refused without counting against the address.
                return .violation(
                    .unsupportedVersion, "this server speaks protocol version \(Signaling.protocolVersion)")
            case .refuse(let code):
                return await refuse(code, id: nil, closes: true)
            case .accept(let handle):
                context.metrics.authenticated.increment()
                await context.hub.register(handle)
                let bound = context.probePort.load()
                let probePort = bound == 0 ? nil : bound
                send(
                    .welcome(
                        .init(
                            device: handle.device, observedAddress: observed?.address,
                            observedPort: observed?.port.map { Int($0) },
                            probePort: probePort)))
                logger.debug("peer authenticated", metadata: ["peer.id": "\(handle.device.hex)"])
                return nil
            }
        case .join(let join):
            // What a peer waits for its answer, refusals (and their deliberate delay) included. Each path records
            // before its answer is queued, so a peer holding the answer finds the join counted.
            let received = ContinuousClock.now
            let answering = { context.metrics.joinLatency.record(since: received) }
            if let exit = banned() {
                answering()
                return exit
            }
            switch state.withLock({ $0.join(join) }) {
            case .protocolViolation:
                return .violation(.unexpected, "join before hello")
            case .refuse(let code, let countsAsFailure):
                if countsAsFailure { return await refuse(code, id: join.id, closes: false, answering: answering) }
                answering()
                reply(join.id, code, "addresses refused")
                return nil
            case .accept(let handle):
                let outcome = await context.hub.join(handle, swarm: join.swarm, addresses: join.addresses)
                answering()
                switch outcome {
                case .success(let peers):
                    context.metrics.joins.increment()
                    send(.joined(.init(id: join.id, swarm: join.swarm, peers: peers)))
                case .failure(let code):
                    reply(join.id, code, "join refused")
                }
                return nil
            }
        case .leave(let leave):
            guard case .proceed(let handle) = state.withLock({ $0.request() }) else {
                return .violation(.unexpected, "leave before hello")
            }
            await context.hub.leave(handle, swarm: leave.swarm)
            return nil
        case .relayOpen(let open):
            guard case .proceed(let handle) = state.withLock({ $0.request() }) else {
                return .violation(.unexpected, "relay-open before hello")
            }
            switch await context.hub.openRelay(handle, swarm: open.swarm, peer: open.peer) {
            case .success(let stream):
                context.metrics.relayStreams.increment()
                send(.relayOpened(.init(id: open.id, stream: stream)))
            case .failure(let code):
                reply(open.id, code, "relay refused")
            }
            return nil
        case .punchRequest(let request):
            guard case .proceed(let handle) = state.withLock({ $0.request() }) else {
                return .violation(.unexpected, "punch-request before hello")
            }
            switch await context.hub.punch(
                handle, swarm: request.swarm, peer: request.peer, spray: request.spray ?? false, now: .now)
            {
            case .success(let punch):
                context.metrics.punchAttempts.increment()
                if punch.toTarget.spray != nil { context.metrics.sprayPunches.increment() }
                send(.punch(punch.toRequester))
                punch.target.send(.punch(punch.toTarget))
            case .failure(let code):
                reply(request.id, code, "punch refused")
            }
            return nil
        case .punchResult(let result):
            guard case .proceed(let handle) = state.withLock({ $0.request() }) else {
                return .violation(.unexpected, "punch-result before hello")
            }
            if await context.hub.punchResult(handle, id: result.id), result.connected {
                context.metrics.punchSuccesses.increment()
            }
            return nil
        case .relayClose(let ref):
            guard case .proceed(let handle) = state.withLock({ $0.request() }) else {
                return .violation(.unexpected, "relay-close before hello")
            }
            await context.hub.closeRelay(ref.stream, by: handle)
            return nil
        case .challenge, .welcome, .joined, .peerJoined, .peerLeft, .relayOpened, .relayIncoming, .relayClosed, .punch,
            .error:
            return .violation(.unexpected, "server-to-client message sent by a client")
        }
    }

    /// The closing answer for a banned address, or `nil` when it is not banned.
    private func banned() -> SessionExit? {
        guard let until = context.store.bannedUntil(remoteAddress) else { return nil }
        context.metrics.bannedConnections.increment()
        return .violation(
            .banned, "too many failed proofs from this address", retryAfter: max(1, until.timeIntervalSinceNow))
    }

    /// A failed proof: counted against the address (persisted), then delayed, refused, or banned. `answering` runs
    /// just before the answer is queued.
    private func refuse(
        _ code: SignalErrorCode, id: UInt64?, closes: Bool, answering: () -> Void = {}
    ) async -> SessionExit? {
        let metrics = context.metrics
        switch code {
        case .badProof: metrics.refusedProofs.increment()
        case .badJoinKey: metrics.refusedJoinKeys.increment()
        case .badSwarmProof: metrics.refusedSwarmProofs.increment()
        default: break
        }
        logger.info(
            "proof refused", metadata: ["error.code": "\(code.rawValue)", "remote.address": "\(remoteAddress)"])
        let verdict: AbuseStore.Verdict
        do {
            verdict = try await context.store.recordFailure(remoteAddress, reason: code)
        } catch {
            logger.error("failure not recorded", metadata: ["error.type": "\(String(reflecting: type(of: error)))"])
            verdict = .refuse
        }
        switch verdict {
        case .refuse:
            break
        case .delayThenRefuse(let delay):
            try? await Task.sleep(for: delay)
        case .banned(let until):
            metrics.bans.increment()
            logger.notice("address banned", metadata: ["remote.address": "\(remoteAddress)", "ban.until": "\(until)"])
            answering()
            return .violation(
                .banned, "too many failed proofs from this address", retryAfter: until.timeIntervalSinceNow)
        }
        answering()
        if closes { return .violation(code, "proof refused") }
        reply(id, code, "proof refused")
        return nil
    }

    /// A binary relay frame: `stream id (4 bytes, big endian) || payload`, forwarded under the relay's, the
    /// sender address's and the global byte-rate limits, each charged the payload plus a per-frame overhead. Waiting
    /// for tokens pauses this reader, which is the backpressure. A frame with no payload is dropped.
    private func relay(_ buffer: ByteBuffer, rate: inout TokenBucket) async throws -> SessionExit? {
        guard case .proceed(let handle) = state.withLock({ $0.request() }) else {
            return .violation(.unexpected, "relay data before hello")
        }
        guard let stream = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else {
            return .violation(.badMessage, "relay frame shorter than its header")
        }
        // Data for a stream that just closed is dropped (the close message is on its way to the sender), but it
        // counts against the message rate so a flood of frames for no stream is cut off like any other flood.
        guard let (relay, target, addressBucket) = await context.hub.route(stream, from: handle) else {
            return rate.tryTake() ? nil : .violation(.rateLimited, "too many frames for closed streams")
        }
        let payloadBytes = buffer.readableBytes - RelayFrame.headerSize
        let cost = payloadBytes + configuration.relayFrameOverhead
        let wait = max(
            relay.bucket.take(cost), addressBucket.take(cost), context.globalRelayBucket.take(cost))
        if wait > .zero { try await Task.sleep(for: wait) }
        guard payloadBytes > 0 else { return nil }
        if let observer = configuration.relayObserver,
            let payload = buffer.getSlice(at: buffer.readerIndex + RelayFrame.headerSize, length: payloadBytes)
        {
            observer(stream, payload)
        }
        do {
            try await target.writeBinary(buffer)
            context.metrics.relayedBytes.increment(by: payloadBytes)
        } catch {
            await context.hub.closeRelay(stream, by: target)
        }
        return nil
    }
}
