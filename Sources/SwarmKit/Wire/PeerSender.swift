internal import HarpBasics
public import NIOCore
internal import Synchronization

/// The one outbound queue of a peer connection: every message this side sends on behalf of the peer goes through it,
/// and it bounds what waits in user space (docs/protocol.md §6.3).
///
/// The backlog is the bytes of messages handed to the channel whose writes have not completed yet (not yet taken by
/// the kernel): it grows only while the socket is not writable, so it follows the peer's reading. Two limits apply:
///
/// - `queueLimit` (small, 512 KiB by default): `send` waits while the backlog is above it. Bulk data (pieces,
///   manifest pages) goes through `send`, so a peer that reads slowly, or not at all, holds it to `queueLimit` plus
///   one message. On a connection that moves bytes slowly the limit is lower: at most `queueTime` (50 ms) of the
///   rate at which the kernel has taken this connection's bytes lately, and the kernel's unsent limit
///   (`TCP_NOTSENT_LOWAT`) follows the same rate. Control messages are written behind the bulk data already handed
///   to the channel, so this is how long a request, `have` or cancel waits behind pieces: on a slow uplink shared
///   by several connections, 512 KiB plus the kernel's 256 KiB held a fetcher's requests for 2-7 s behind its own
///   uploads, and its sources idled while it waited.
/// - `backlogLimit` (4 MiB by default): `enqueue`, for control messages that must not wait (requests, `have`, choke
///   state), throws `PeerSendError.backlogExceeded` instead of writing past it. The protocol bounds what an honest
///   peer makes this side send while it is not reading far below this limit, so passing it is a fault of the peer;
///   the caller drops the connection.
///
/// Thread-safe: the state is behind a `Mutex`; write completions arrive on the channel's event loop.
public final class PeerSender: Sendable {
    private struct Waiter {
        let id: UInt64
        /// Resume once the backlog is at most this many bytes.
        let threshold: Int
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var backlog = 0
        var peak = 0
        var nextWaiterID: UInt64 = 0
        var waiters: [Waiter] = []
        /// Set when a write failed: the connection is gone.
        var closed = false
        /// The bytes the kernel took lately (write completions), over `rateWindow`.
        var meter = RateMeter(window: PeerSender.rateWindow)
        /// The unsent limit last given to the kernel (nil: not adapted).
        var kernelUnsent: Int?
    }

    /// How long bulk data may wait in user space, and unsent in the kernel, at the connection's recent rate.
    public static let queueTime = 0.05
    /// The time constant of the rate the limits follow, in seconds.
    static let rateWindow = 1.0
    /// The kernel's unsent limit never goes below this (a few segments).
    public static let minimumKernelUnsent = 16 * 1024

    /// The two limits, in bytes.
    public struct Limits: Sendable, Equatable {
        public var queue: Int
        public var backlog: Int
        /// What the socket's `TCP_NOTSENT_LOWAT` was set to (nil: not a socket the sender may tune).
        public var kernelUnsent: Int?
        public init(queue: Int, backlog: Int, kernelUnsent: Int? = nil) {
            self.queue = queue
            self.backlog = backlog
            self.kernelUnsent = kernelUnsent
        }
    }

    private let channel: any Channel
    /// `send` waits while more than this many bytes are waiting.
    public let queueLimit: Int
    /// `enqueue` refuses to let more than this many bytes wait.
    public let backlogLimit: Int
    /// The kernel's unsent limit the socket was set up with (`TCP_NOTSENT_LOWAT`), the most it is raised to; nil:
    /// the sender leaves it alone.
    public let kernelUnsentLimit: Int?
    private let state = Mutex(State())

    /// `queueLimit` bounds what `send` lets wait; `backlogLimit` (at least `queueLimit` plus two of the largest
    /// messages) bounds everything. With `kernelUnsentLimit` (what the socket's `TCP_NOTSENT_LOWAT` was set to), the
    /// sender lowers the kernel's limit on a slow connection and raises it again, up to that value, as it speeds up.
    public init(
        channel: any Channel, queueLimit: Int = 512 * 1024, backlogLimit: Int = 4 * 1024 * 1024,
        kernelUnsentLimit: Int? = nil
    ) {
        precondition(queueLimit > 0 && backlogLimit >= queueLimit + 2 * (WireLimits.maxMessageLength + 4))
        precondition(kernelUnsentLimit.map { $0 >= Self.minimumKernelUnsent } ?? true)
        self.channel = channel
        self.queueLimit = queueLimit
        self.backlogLimit = backlogLimit
        self.kernelUnsentLimit = kernelUnsentLimit
        state.withLock { $0.kernelUnsent = kernelUnsentLimit }
    }

    /// What `send` lets wait now: `queueTime` of the recent rate, at most `queueLimit`.
    public var bulkLimit: Int {
        let now = Self.now()
        return state.withLock { Self.bulkLimit(rate: $0.meter.rate(at: now), cap: queueLimit) }
    }

    /// The kernel's unsent limit as last set (nil: left alone).
    public var kernelUnsent: Int? { state.withLock { $0.kernelUnsent } }

    /// `queueTime` of `rate` bytes per second, at most `cap`.
    static func bulkLimit(rate: Double, cap: Int) -> Int {
        Int(min(Double(cap), (rate * queueTime).rounded(.up)))
    }

    /// The kernel's unsent limit for `rate`: `queueTime` of it, between `minimumKernelUnsent` and `cap`.
    static func kernelLimit(rate: Double, cap: Int) -> Int {
        max(minimumKernelUnsent, min(cap, Int((rate * queueTime).rounded(.up))))
    }

    private static func now() -> Double {
        Double(NIODeadline.now().uptimeNanoseconds) / 1e9
    }

    /// The bytes handed to the channel whose writes have not completed yet.
    public var bufferedBytes: Int { state.withLock { $0.backlog } }

    /// The largest backlog this connection has had.
    public var peakBufferedBytes: Int { state.withLock { $0.peak } }

    /// Writes and flushes `messages` now, unless they would take the backlog over `backlogLimit`.
    ///
    /// - Throws: `PeerSendError.backlogExceeded` (nothing is written then): the peer does not read what the protocol
    ///   makes it read; close the connection. `PeerSendError.connectionClosed` once a write failed.
    public func enqueue(_ messages: WireMessage...) throws(PeerSendError) {
        try enqueue(messages)
    }

    /// Writes and flushes `messages` now, unless they would take the backlog over `backlogLimit`.
    ///
    /// - Throws: `PeerSendError` (nothing is written then).
    public func enqueue(_ messages: [WireMessage]) throws(PeerSendError) {
        _ = try write(messages, wantsFuture: false)
    }

    /// Waits until the backlog is at most `queueLimit`, then writes and flushes `message`.
    ///
    /// - Throws: `PeerSendError` (`connectionClosed`, or `backlogExceeded` when control messages filled the backlog
    ///   meanwhile), or `CancellationError`.
    ///
    /// Runs in the caller's isolation (`nonisolated(nonsending)`): a seeder's upload loop, on its swarm's actor, sends
    /// each block without leaving the actor and coming back, and does not suspend at all while there is room.
    public nonisolated(nonsending) func send(_ message: WireMessage) async throws {
        try await wait(untilAtMost: bulkLimit)
        _ = try write([message], wantsFuture: false)
    }

    /// Like `send`, then waits until `message` itself has been written: one such message is in flight at a time.
    public nonisolated(nonsending) func sendAndWait(_ message: WireMessage) async throws {
        try await wait(untilAtMost: bulkLimit)
        try await write([message], wantsFuture: true)?.get()
    }

    /// Waits until everything sent so far has been written.
    public func drain() async throws {
        try await wait(untilAtMost: 0)
    }

    private func write(_ messages: [WireMessage], wantsFuture: Bool) throws(PeerSendError) -> EventLoopFuture<Void>? {
        let bytes = messages.reduce(0) { $0 + 6 + $1.bodyLength }
        let refused: PeerSendError? = state.withLock { state in
            if state.closed { return .connectionClosed }
            guard state.backlog + bytes <= backlogLimit else {
                return .backlogExceeded(buffered: state.backlog, adding: bytes, limit: backlogLimit)
            }
            state.backlog += bytes
            state.peak = max(state.peak, state.backlog)
            return nil
        }
        if let refused { throw refused }
        guard !messages.isEmpty else { return nil }
        let promise = channel.eventLoop.makePromise(of: Void.self)
        for message in messages.dropLast() { channel.write(message, promise: nil) }
        channel.writeAndFlush(messages.last!, promise: promise)
        // The last write completes after the others (a channel writes in order, and a failure fails them all).
        promise.futureResult.whenComplete { result in
            if case .failure = result { self.failed() }
            self.written(bytes)
        }
        return wantsFuture ? promise.futureResult : nil
    }

    private func written(_ bytes: Int) {
        let now = Self.now()
        let (ready, kernel): ([CheckedContinuation<Void, any Error>], Int?) = state.withLock { state in
            state.backlog -= bytes
            state.meter.add(bytes, at: now)
            let backlog = state.backlog
            let ready = state.waiters.filter { $0.threshold >= backlog }
            state.waiters.removeAll { $0.threshold >= backlog }
            // The kernel's limit follows the rate, changed only when it is off by half or double (a system call).
            var kernel: Int?
            if let cap = kernelUnsentLimit, let current = state.kernelUnsent, !state.closed {
                let wanted = Self.kernelLimit(rate: state.meter.rate(at: now), cap: cap)
                if wanted * 2 <= current || wanted >= current * 2 || (wanted == cap) != (current == cap) {
                    state.kernelUnsent = wanted
                    kernel = wanted
                }
            }
            return (ready.map(\.continuation), kernel)
        }
        if let kernel {
            // Best effort: a channel that is not a TCP socket, or is closing, keeps what it has.
            channel.setOption(.tcpNotSentLowWatermark, value: SocketOptionValue(kernel)).whenFailure { _ in }
        }
        for continuation in ready { continuation.resume() }
    }

    private func failed() {
        let waiting: [Waiter] = state.withLock { state in
            state.closed = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiting { waiter.continuation.resume(throwing: PeerSendError.connectionClosed) }
    }

    private nonisolated(nonsending) func wait(untilAtMost threshold: Int) async throws {
        // Room already (the common case while the peer reads): no continuation, so the task does not suspend.
        if Task.isCancelled { throw CancellationError() }
        let id: UInt64? = try state.withLock { state throws(PeerSendError) in
            if state.closed { throw .connectionClosed }
            guard state.backlog > threshold else { return nil }
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resume: (any Error)?? = state.withLock { state in
                    if Task.isCancelled { return .some(CancellationError()) }
                    if state.closed { return .some(PeerSendError.connectionClosed) }
                    if state.backlog <= threshold { return .some(nil) }
                    state.waiters.append(Waiter(id: id, threshold: threshold, continuation: continuation))
                    return .none
                }
                switch resume {
                case .none: break
                case .some(.none): continuation.resume()
                case .some(.some(let error)): continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            let waiter: Waiter? = state.withLock { state in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }
}

/// Why `PeerSender` refused a message.
public enum PeerSendError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The peer does not read: `buffered` bytes already wait to be written, and `adding` more would pass `limit`.
    /// Close the connection (the swarm counts it as a fault of the peer).
    case backlogExceeded(buffered: Int, adding: Int, limit: Int)
    /// A write failed: the connection is closed.
    case connectionClosed

    public var description: String {
        switch self {
        case .backlogExceeded(let buffered, let adding, let limit):
            "the peer does not read: \(buffered) bytes wait to be sent, \(adding) more would pass the limit of "
                + "\(limit); the connection is closed"
        case .connectionClosed: "the peer connection is closed"
        }
    }
}
