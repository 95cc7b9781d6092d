internal import HarpBasics

/// The server as a source of last resort, as a value: how many range requests may be in flight, the grace at the
/// start of a fetch, and the backoff after failures. No I/O; `SwarmEngine.fillServer()` decides what to ask for.
public struct WebSeedScheduler: Sendable {
    /// Whether the server may be asked at all.
    public var enabled = false
    /// Range requests at once while fewer than four devices fetch (one each with more: the server's uplink is shared
    /// by all of them anyway, and fewer requests at once complete each first copy sooner, to be passed on).
    public let requests: Int
    /// At the start of a fetch with no peer connected yet, wait this long for peers before asking the server.
    public let grace: Double
    public private(set) var startedAt: Double = 0
    /// Chunks asked of the server and not yet answered, in the order asked.
    public private(set) var inFlight: [Int] = []
    public private(set) var failures = 0
    public private(set) var pausedUntil: Double = 0

    static let backoff = Backoff(base: .milliseconds(250), cap: .seconds(30))

    public init(requests: Int, grace: Double) {
        self.requests = requests
        self.grace = grace
    }

    mutating func fetchStarted(at now: Double) { startedAt = now }

    /// Requests allowed at once in a swarm of `members` devices (this one included).
    func cap(members: Int) -> Int { members >= 4 ? 1 : requests }

    mutating func asked(_ chunk: Int) { inFlight.append(chunk) }

    /// The answer for `chunk` arrived; false when it was cancelled meanwhile (the answer is not wanted).
    mutating func finish(_ chunk: Int) -> Bool {
        guard let index = inFlight.firstIndex(of: chunk) else { return false }
        inFlight.remove(at: index)
        return true
    }

    /// Stops asking for `chunk`; returns whether it was in flight.
    mutating func cancel(_ chunk: Int) -> Bool { finish(chunk) }

    /// Stops every request; returns the chunks that were in flight.
    mutating func cancelAll() -> [Int] {
        defer { inFlight.removeAll() }
        return inFlight
    }

    mutating func succeeded() { failures = 0 }

    /// A request failed in a way that may pass: pause, doubling from 0.5 s up to 30 s. Returns the pause.
    mutating func failed(at now: Double) -> Double {
        failures += 1
        let pause = Self.backoff.delay(forAttempt: failures).secondsValue
        pausedUntil = now + pause
        return pause
    }

    /// Whether the grace at the start of a fetch still runs (the caller checks that no connected peer has something to
    /// give yet).
    func inGrace(now: Double) -> Bool { now - startedAt < grace }

    /// The next time the server's turn may change by time alone: the end of the grace, of a pause, or of the wait
    /// for idle peers.
    func nextDecision(lastPeerDelivery: Double, idle: Double, now: Double) -> Double? {
        guard enabled else { return nil }
        return [startedAt + grace, pausedUntil, lastPeerDelivery + idle].map { $0 + 0.001 }.filter { $0 > now }.min()
    }
}

extension SwarmEngine {
    /// Whether a connected peer has something to give (a seeder, or a fetcher that announced chunks): it ends the
    /// server's grace. Fetchers that start together connect to each other first, with nothing yet: counting them,
    /// each asked the server for a chunk a moment before the seeder's connection arrived.
    var hasHolder: Bool {
        links.values.contains { $0.superSeeding || !($0.theirs?.isEmpty ?? true) }
    }

    /// Asks the server for what peers cannot give: chunks no connected peer has, each fetcher preferring its own
    /// stripe; with idle peers, also the rarest others.
    mutating func fillServer() {
        guard server.enabled, var picker, let manifest, now >= server.pausedUntil, !picker.isComplete,
            !(server.inGrace(now: now) && !hasHolder)
        else { return }
        // This runs after every event while fetching: the cheap checks first, the members sorted only when a
        // request may go out.
        let cap = server.cap(members: links.count + 1)
        let free = cap - server.inFlight.count
        guard free > 0 else { return }
        var members = order.compactMap { links[$0]?.deviceKey } + [localKey]
        members.sort { $0.lexicographicallyPrecedes($1) }
        let peersBusy = links.values.contains { !$0.outstanding.isEmpty }
        // With a seeder connected (an origin, or a peer with every chunk) the server is not asked for what that
        // seeder can give, even while this fetcher waits for its turn: the seeder's uplink is meant to carry the
        // file, and a chunk taken from both is a copy too many.
        let seederConnected = links.values.contains { $0.superSeeding || ($0.theirs?.isFull ?? false) }
        let idle = !seederConnected && now - lastPeerDelivery > options.peerIdleBeforeServer
        let stripe = (index: members.firstIndex(of: localKey)!, of: members.count)
        let picks = picker.nextForServer(
            limit: free, stripe: stripe, reserve: peersBusy ? members.count * cap : 0,
            includeAvailable: !peersBusy && idle, using: &rng)
        self.picker = picker
        guard !picks.isEmpty else { return }
        log(
            .trace, "asking the server",
            [
                "chunks": "\(picks)", "peers.busy": "\(peersBusy)", "peers.idle": "\(idle)",
                "unavailable": "\(picker.availability(of: picks[0]) == 0)",
            ])
        for chunk in picks {
            let range = manifest.range(of: chunk)
            server.asked(chunk)
            emit(.fetchRange(chunk: chunk, offset: range.lowerBound, length: Int(range.upperBound - range.lowerBound)))
        }
    }

    mutating func serverDone(_ chunk: Int) {
        guard server.finish(chunk), let manifest else { return emit(.discard(chunk: chunk, from: .server)) }
        arrived(chunk, length: manifest.chunks[chunk].length, from: .server)
    }

    mutating func serverFailed(_ chunk: Int, _ failure: ServerFailure) {
        guard server.finish(chunk) else { return }
        picker?.failed(chunk, from: .server)
        switch failure {
        case .changed:
            fail(.changedOnServer)
        case .refused(let why):
            fail(.serverRefused(why))
        case .transient(let why):
            let pause = server.failed(at: now)
            log(
                .warning, "server request failed; retrying later",
                ["chunk": "\(chunk)", "error": why, "retry.in.s": "\(pause)"])
            if server.failures >= 8, links.isEmpty { fail(.server(why)) }
        }
    }
}
