public import Logging
public import NIOCore
internal import Synchronization

/// One connection to a device carrying every swarm the two share (docs/protocol.md §5.4): channel 0 is the swarm of
/// the connection's handshake, and each swarm attached later has a channel of its own, opened by `attach` with a
/// proof of that swarm's key.
///
/// The trunk reads the connection in one task and hands each message to its channel's receiver, in order, waiting
/// for it: a channel whose swarm is slow holds the others up, as one connection's reader did before, and nothing is
/// buffered per channel. A channel's messages wait for its receiver to be registered (`serve`), which the swarm does
/// right after admitting the link. The connection closes when its last channel ends.
public final class PeerTrunk: Sendable {
    /// What this side answers to the peer's `attach`: the swarm's key (to check the proof and make ours), this side's
    /// capability bits for it, and what serves the channel once attached.
    public struct Acceptance: Sendable {
        public let swarmKey: SecureBytes
        public let capabilities: UInt64
        public let serve: @Sendable (SwarmLink) async -> Void

        public init(swarmKey: SecureBytes, capabilities: UInt64, serve: @escaping @Sendable (SwarmLink) async -> Void) {
            self.swarmKey = swarmKey
            self.capabilities = capabilities
            self.serve = serve
        }
    }

    /// Looks up the swarm an `attach` names (by its id S); nil refuses it.
    public typealias Offer = @Sendable (_ swarmID: [UInt8]) async -> Acceptance?

    /// The connection.
    public let connection: PeerConnection
    /// How long an `attach` waits for its answer.
    static let attachTimeout: Duration = .seconds(10)

    private enum Slot {
        /// Attached (or channel 0), its receiver not registered yet: its messages wait.
        case pending([CheckedContinuation<Void, Never>])
        case serving(@Sendable (WireMessage) async -> Void, CheckedContinuation<Void, any Error>)
        case ended

        var isLive: Bool {
            if case .ended = self { return false }
            return true
        }
    }

    private struct Attaching {
        let swarmID: [UInt8]
        let swarmKey: SecureBytes
        let continuation: CheckedContinuation<SwarmLink?, Never>
    }

    private struct State {
        var slots: [UInt16: Slot] = [0: .pending([])]
        var attaching: [UInt16: Attaching] = [:]
        /// The next channel this side attaches (odd for the Noise initiator): numbers are not reused on a connection.
        var nextChannel: UInt16
        /// Set when the connection has ended, with the error that ended it, if any.
        var ended: Result<Void, any Error>?
        var started = false

        /// The channels that still hold the connection open: those not ended, and the attaches awaiting an answer.
        var liveChannels: Int { slots.values.filter(\.isLive).count + attaching.count }

        /// Ends `channel`'s slot; returns what it was and how many channels still hold the connection open.
        mutating func end(_ channel: UInt16) -> (Slot?, remaining: Int) {
            let slot = slots[channel]
            slots[channel] = .ended
            return (slot, liveChannels)
        }
    }

    private let state: Mutex<State>
    private let offer: Offer?
    private let logger: Logger

    /// A trunk for `connection`; `offer` decides on the peer's attaches (nil refuses them all). Call `start()`.
    public init(_ connection: PeerConnection, offer: Offer? = nil, logger: Logger = Logger(label: "harp.peer")) {
        self.connection = connection
        self.offer = offer
        self.logger = logger
        state = Mutex(State(nextChannel: connection.session.isInitiator ? 1 : 2))
    }

    /// Whether further swarms may be attached: both sides offered channels and the connection is open.
    public var canAttach: Bool {
        connection.session.carriesChannels
            && state.withLock { $0.ended == nil && $0.nextChannel < WireLimits.maxChannels }
    }

    /// The swarms carried now (channel 0 included while it lasts).
    public var openChannels: Int {
        state.withLock { state in state.slots.values.filter(\.isLive).count }
    }

    /// The link of channel 0, the swarm of the connection's handshake.
    public var first: SwarmLink { SwarmLink(trunk: self, channel: 0, session: connection.session) }

    /// Starts reading the connection (once).
    public func start() {
        let first = state.withLock { state in
            defer { state.started = true }
            return !state.started
        }
        guard first else { return }
        Task { await self.read() }
    }

    /// Waits until the connection has closed.
    public func closed() async {
        try? await connection.channel.channel.closeFuture.get()
    }

    // MARK: Channels

    /// Asks the peer to carry the swarm `swarmID` (key `swarmKey`) on a new channel, with this side's capability
    /// bits `capabilities` for it. Returns the channel's link once the peer accepted and proved the key too; nil when
    /// it refused, did not answer in time, or channels cannot be used on this connection.
    public func attach(swarmID: [UInt8], swarmKey: SecureBytes, capabilities: UInt64) async -> SwarmLink? {
        guard connection.session.carriesChannels else { return nil }
        let channel: UInt16? = state.withLock { state in
            guard state.ended == nil, state.nextChannel < WireLimits.maxChannels else { return nil }
            defer { state.nextChannel += 2 }
            return state.nextChannel
        }
        guard let channel else { return nil }
        let proof = ChannelProof.make(
            .attach, swarmKey: swarmKey, handshakeHash: connection.session.handshakeHash, channel: channel,
            swarmID: swarmID)
        let timeout = Task {
            try await Task.sleep(for: Self.attachTimeout)
            self.answer(channel, with: nil)
        }
        defer { timeout.cancel() }
        return await withCheckedContinuation { continuation in
            let sent: Bool = state.withLock { state in
                guard state.ended == nil else { return false }
                state.attaching[channel] = Attaching(
                    swarmID: swarmID, swarmKey: swarmKey, continuation: continuation)
                return true
            }
            guard sent else { return continuation.resume(returning: nil) }
            do {
                try connection.sender.enqueue(
                    .attach(Attach(channel: channel, swarmID: swarmID, capabilities: capabilities, proof: proof)))
            } catch {
                answer(channel, with: nil)
            }
        }
    }

    /// Serves channel `channel`: `receive` gets its messages in order until the channel ends. Returns when it has
    /// ended (detached by either side, or the connection closed); throws the error that closed the connection, if
    /// any (a `WireProtocolError` for a protocol violation).
    public func serve(channel: UInt16, receive: @escaping @Sendable (WireMessage) async -> Void) async throws {
        start()
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            enum Outcome {
                case serving([CheckedContinuation<Void, Never>])
                case ended(Result<Void, any Error>)
            }
            let outcome: Outcome = state.withLock { state in
                if let ended = state.ended { return .ended(ended) }
                guard case .pending(let waiting) = state.slots[channel] else { return .ended(.success(())) }
                state.slots[channel] = .serving(receive, continuation)
                return .serving(waiting)
            }
            switch outcome {
            case .serving(let waiting):
                for waiter in waiting { waiter.resume() }
            case .ended(let result):
                continuation.resume(with: result)
            }
        }
    }

    /// Ends channel `channel` from this side with `reason`: `detach` while other channels go on, `goodbye` (and the
    /// connection's close) when it was the last.
    public func end(channel: UInt16, reason: GoodbyeReason) async {
        let (slot, remaining) = state.withLock { $0.end(channel) }
        switch slot {
        case .ended, nil:
            return
        case .pending(let waiting):
            for waiter in waiting { waiter.resume() }
        case .serving(_, let continuation):
            continuation.resume()
        }
        if remaining == 0 {
            try? await connection.finish(reason: reason)
        } else {
            try? connection.sender.enqueue(.detach(channel: channel, reason: reason))
        }
    }

    // MARK: Reading

    private func read() async {
        var result: Result<Void, any Error> = .success(())
        do {
            try await connection.channel.executeThenClose { inbound, _ in
                for try await message in inbound { await self.route(message) }
            }
        } catch {
            result = .failure(error)
        }
        let (slots, attaching) = state.withLock { state in
            defer {
                state.ended = result
                state.slots = state.slots.mapValues { _ in .ended }
                state.attaching = [:]
            }
            return (state.slots, state.attaching)
        }
        for slot in slots.values {
            switch slot {
            case .pending(let waiting): for waiter in waiting { waiter.resume() }
            case .serving(_, let continuation): continuation.resume(with: result)
            case .ended: break
            }
        }
        for pending in attaching.values { pending.continuation.resume(returning: nil) }
    }

    private func route(_ message: WireMessage) async {
        switch message {
        case .onChannel(let channel, let inner): await deliver(inner, on: channel)
        case .attach(let attach): await offered(attach)
        case .attached(let attached): accepted(attached)
        case .detach(let channel, _): detached(channel)
        default: await deliver(message, on: 0)
        }
    }

    private func deliver(_ message: WireMessage, on channel: UInt16) async {
        while true {
            enum Next {
                case call(@Sendable (WireMessage) async -> Void)
                case wait
                case drop
            }
            let next: Next = state.withLock { state in
                switch state.slots[channel] {
                case .serving(let receive, _): return .call(receive)
                case .pending: return .wait
                case .ended, nil: return .drop
                }
            }
            switch next {
            case .call(let receive): return await receive(message)
            case .drop: return
            case .wait:
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let waiting: Bool = state.withLock { state in
                        guard case .pending(var waiting) = state.slots[channel] else { return false }
                        waiting.append(continuation)
                        state.slots[channel] = .pending(waiting)
                        return true
                    }
                    if !waiting { continuation.resume() }
                }
            }
        }
    }

    /// The peer's `attach`: accepted when this side serves the swarm and the proof verifies, refused otherwise.
    private func offered(_ attach: Attach) async {
        let session = connection.session
        guard let acceptance = await offer?(attach.swarmID),
            ChannelProof.verify(
                attach.proof, .attach, swarmKey: acceptance.swarmKey, handshakeHash: session.handshakeHash,
                channel: attach.channel, swarmID: attach.swarmID)
        else {
            logger.debug("refused a peer's attach", metadata: ["channel": "\(attach.channel)"])
            try? connection.sender.enqueue(.detach(channel: attach.channel, reason: .notServed))
            return
        }
        let proof = ChannelProof.make(
            .attached, swarmKey: acceptance.swarmKey, handshakeHash: session.handshakeHash, channel: attach.channel,
            swarmID: attach.swarmID)
        let opened: Bool = state.withLock { state in
            guard state.ended == nil else { return false }
            state.slots[attach.channel] = .pending([])
            return true
        }
        guard opened else { return }
        do {
            try connection.sender.enqueue(
                .attached(Attached(channel: attach.channel, capabilities: acceptance.capabilities, proof: proof)))
        } catch {
            return
        }
        let link = SwarmLink(
            trunk: self, channel: attach.channel, session: session.withCapabilities(attach.capabilities))
        Task {
            await acceptance.serve(link)
            // Whatever became of it (a swarm that did not take the link registered no receiver, and the channel's
            // messages would wait for one), the channel ends with its server.
            await self.end(channel: link.channel, reason: .normal)
        }
    }

    /// The peer's `attached`: the link, if its proof verifies (else the connection is closed: a peer that answers
    /// for a swarm whose key it cannot prove is not one to keep).
    private func accepted(_ attached: Attached) {
        // Taken off at once, so that the attach's timeout cannot answer it too.
        let pending = state.withLock { $0.attaching.removeValue(forKey: attached.channel) }
        guard let pending else {
            // Answered after the attach gave up waiting: end the channel.
            try? connection.sender.enqueue(.detach(channel: attached.channel, reason: .normal))
            return
        }
        let session = connection.session
        guard
            ChannelProof.verify(
                attached.proof, .attached, swarmKey: pending.swarmKey, handshakeHash: session.handshakeHash,
                channel: attached.channel, swarmID: pending.swarmID)
        else {
            logger.warning(
                "a peer's attached did not prove the swarm's key", metadata: ["channel": "\(attached.channel)"])
            pending.continuation.resume(returning: nil)
            connection.channel.channel.close(promise: nil)
            return
        }
        state.withLock { $0.slots[attached.channel] = .pending([]) }
        pending.continuation.resume(
            returning: SwarmLink(
                trunk: self, channel: attached.channel, session: session.withCapabilities(attached.capabilities)))
    }

    /// Completes the `attach` of `channel`, once. A refused attach that was all the connection still waited for
    /// (its other channels ended meanwhile) closes it.
    private func answer(_ channel: UInt16, with link: SwarmLink?) {
        let (pending, unused) = state.withLock { state in
            let pending = state.attaching.removeValue(forKey: channel)
            return (pending, state.ended == nil && state.liveChannels == 0)
        }
        pending?.continuation.resume(returning: link)
        if pending != nil, link == nil, unused {
            Task { try? await self.connection.finish(reason: .normal) }
        }
    }

    /// The peer's `detach`: a refusal of this side's attach, or the end of a channel (answered with `detach`).
    private func detached(_ channel: UInt16) {
        if state.withLock({ $0.attaching[channel] != nil }) {
            return answer(channel, with: nil)
        }
        let (slot, remaining) = state.withLock { $0.end(channel) }
        switch slot {
        case .pending(let waiting): for waiter in waiting { waiter.resume() }
        case .serving(_, let continuation): continuation.resume()
        case .ended, nil: return
        }
        if remaining == 0 {
            Task { try? await self.connection.finish(reason: .normal) }
        } else {
            try? connection.sender.enqueue(.detach(channel: channel, reason: .normal))
        }
    }
}

/// One swarm's side of a connection: channel 0 of a connection, or a channel attached to it (`PeerTrunk`).
public struct SwarmLink: Sendable {
    public let trunk: PeerTrunk
    public let channel: UInt16
    /// The peer's session as this swarm sees it: for an attached channel, the capability bits of its `attach` or
    /// `attached`.
    public let session: PeerSession

    /// The connection's queue, with this channel's messages marked for it.
    public var sender: LinkSender { LinkSender(base: trunk.connection.sender, channel: channel) }

    /// The peer's address as the socket sees it.
    public var remoteAddress: SocketAddress? { trunk.connection.channel.channel.remoteAddress }

    /// Ends this swarm's use of the connection (see `PeerTrunk.end(channel:reason:)`).
    public func finish(reason: GoodbyeReason = .normal) async {
        await trunk.end(channel: channel, reason: reason)
    }
}

/// `PeerSender` for one channel: its messages go as `onChannel` (channel 0's as they are).
public struct LinkSender: Sendable {
    let base: PeerSender
    let channel: UInt16

    private func marked(_ message: WireMessage) -> WireMessage {
        channel == 0 ? message : .onChannel(channel, message)
    }

    /// See `PeerSender.enqueue(_:)`.
    public func enqueue(_ messages: [WireMessage]) throws(PeerSendError) {
        try base.enqueue(messages.map(marked))
    }

    /// See `PeerSender.send(_:)`.
    public nonisolated(nonsending) func send(_ message: WireMessage) async throws {
        try await base.send(marked(message))
    }

    /// See `PeerSender.sendAndWait(_:)`.
    public nonisolated(nonsending) func sendAndWait(_ message: WireMessage) async throws {
        try await base.sendAndWait(marked(message))
    }

    public var bufferedBytes: Int { base.bufferedBytes }
    public var peakBufferedBytes: Int { base.peakBufferedBytes }
}

extension PeerSession {
    /// The same session with the peer's capability bits for an attached swarm.
    func withCapabilities(_ capabilities: UInt64) -> PeerSession {
        var hello = remoteHello
        hello.capabilities = capabilities | (remoteHello.capabilities & Hello.Capability.channels)
        return PeerSession(
            remoteDeviceKey: remoteDeviceKey, remoteHello: hello, handshakeHash: handshakeHash, cipher: cipher,
            isInitiator: isInitiator)
    }
}
