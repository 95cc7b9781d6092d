import SignalingProtocol

/// Hole punching (docs/nat.md): the hub checks that both ends are members of the swarm and understand `punch`,
/// limits how often a pair may ask, and times the attempt so both ends dial at the same moment: each end's one-way
/// delay is taken as half the round trip measured at its hello, and the end nearer the server waits for the other.
extension Hub {
    /// What a granted punch sends: a `punch` to each end.
    struct GrantedPunch {
        let toRequester: Message.Punch
        let toTarget: Message.Punch
        let target: SessionHandle
    }

    /// The margin added to the later end's delay (the message still has to be read and acted on).
    static let punchMargin = Duration.milliseconds(20)
    /// The longest delay told to an end.
    static let maxPunchDelay = Duration.seconds(5)
    /// A pair may ask once in this interval.
    static let punchInterval = Duration.seconds(5)
    /// Attempts remembered (for their results) at most, and for how long.
    static let maxPendingPunches = 4096
    static let punchLifetime = Duration.seconds(60)
    /// Spray punches granted to one requester at most in ``sprayWindow``: each makes the other end dial up to
    /// `SprayPunch.maxProbes` ports of the requester's own public address, so a member cannot turn the swarm into a
    /// port scanner of its NAT beyond this. Enough for a symmetric newcomer to a team's swarm to ask for one with each
    /// member at once (with 4, a fifth member went to the relay and its upgrade was refused until the window passed).
    static let maxSpraysPerWindow = 16
    static let sprayWindow = Duration.seconds(10)

    /// A punch of `handle` with `peer` in `swarm`; `spray`: the requester is behind a symmetric NAT and asks for a
    /// spray punch (docs/nat.md, "Spray punching"): it opens many connections to the peer's reflexive candidate, the
    /// peer dials random ports of the requester's public address as this server saw it.
    func punch(
        _ handle: SessionHandle, swarm: SwarmID, peer: DeviceID, spray: Bool = false, now: ContinuousClock.Instant
    ) -> Result<GrantedPunch, SignalErrorCode> {
        guard let entry = sessionEntry(handle) else { return .failure(.unexpected) }
        guard let mine = entry.swarms[swarm] else { return .failure(.notJoined) }
        guard peer != handle.device, let target = sessionEntry(device: peer), let theirs = target.swarms[swarm] else {
            return .failure(.noSuchPeer)
        }
        guard handle.canPunch, target.handle.canPunch else { return .failure(.cannotPunch) }
        var sprayHost: String?
        if spray {
            // The probing end dials the requester's address as seen here, never one the requester names, and only an
            // address it accepts itself (`IPv4Literal.isSprayTarget`: a punch it would refuse is not granted). The
            // requester aims at the target's IPv4 reflexive candidate: without one (a symmetric NAT on both sides)
            // there is nothing to spray for.
            let targetOnLoopback =
                target.handle.observedHost.map { ObservedAddress(address: $0, port: nil).isLoopback } ?? false
            guard handle.canSpray, target.handle.canSpray, let host = handle.observedHost,
                IPv4Literal.isSprayTarget(host, loopbackServer: targetOnLoopback),
                theirs.contains(where: { text in
                    Candidate(text: text).map { $0.kind == .reflexive && IPv4Literal.isValid($0.host) } ?? false
                })
            else { return .failure(.cannotPunch) }
            sprayHost = host
        }
        let pair = PunchPair(handle.device, peer)
        if let last = punchTimes[pair], now - last < Self.punchInterval { return .failure(.cannotPunch) }
        expirePunches(now: now)
        guard pendingPunches.count < Self.maxPendingPunches else { return .failure(.overloaded) }
        if spray {
            let recent = (sprayTimes[handle.device] ?? []).filter { now - $0 < Self.sprayWindow }
            guard recent.count < Self.maxSpraysPerWindow else { return .failure(.cannotPunch) }
            sprayTimes[handle.device] = recent + [now]
        }
        punchTimes[pair] = now
        var id = nextPunch
        while id == 0 || pendingPunches[id] != nil { id &+= 1 }
        nextPunch = id &+ 1
        pendingPunches[id] = PendingPunch(requester: handle.device, created: now)
        let (requesterDelay, targetDelay) = Self.punchDelays(handle.rtt, target.handle.rtt)
        return .success(
            GrantedPunch(
                toRequester: .init(
                    id: id, swarm: swarm, peer: PeerInfo(device: peer, addresses: theirs),
                    delayMs: Self.milliseconds(requesterDelay), spray: sprayHost.map { _ in .init(role: .open) }),
                toTarget: .init(
                    id: id, swarm: swarm, peer: PeerInfo(device: handle.device, addresses: mine),
                    delayMs: Self.milliseconds(targetDelay), spray: sprayHost.map { .init(role: .probe, host: $0) }),
                target: target.handle))
    }

    /// The requester's report of attempt `id`: `true` the first time it comes from the requester (then forgotten).
    func punchResult(_ handle: SessionHandle, id: UInt32) -> Bool {
        guard let pending = pendingPunches[id], pending.requester == handle.device else { return false }
        pendingPunches[id] = nil
        return true
    }

    /// Delays for two ends whose round trips to the server are `a` and `b` (unknown counts as zero): the end with
    /// the shorter one-way delay waits for the difference, both wait the margin, neither more than the maximum.
    static func punchDelays(_ a: Duration?, _ b: Duration?) -> (Duration, Duration) {
        let oneWayA = (a ?? .zero) / 2
        let oneWayB = (b ?? .zero) / 2
        let latest = max(oneWayA, oneWayB)
        return (
            min(latest - oneWayA + punchMargin, maxPunchDelay), min(latest - oneWayB + punchMargin, maxPunchDelay)
        )
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        Int(duration / .milliseconds(1))
    }

    private func expirePunches(now: ContinuousClock.Instant) {
        if pendingPunches.count > Self.maxPendingPunches / 2 {
            pendingPunches = pendingPunches.filter { now - $0.value.created < Self.punchLifetime }
        }
        if punchTimes.count > Self.maxPendingPunches {
            punchTimes = punchTimes.filter { now - $0.value < Self.punchInterval }
        }
        if sprayTimes.count > Self.maxPendingPunches {
            sprayTimes = sprayTimes.filter { $0.value.contains { now - $0 < Self.sprayWindow } }
        }
    }
}

/// An unordered pair of devices.
struct PunchPair: Hashable {
    let low: DeviceID
    let high: DeviceID

    init(_ a: DeviceID, _ b: DeviceID) {
        if a.bytes.lexicographicallyPrecedes(b.bytes) {
            (low, high) = (a, b)
        } else {
            (low, high) = (b, a)
        }
    }
}

/// An attempt whose result may still come.
struct PendingPunch {
    let requester: DeviceID
    let created: ContinuousClock.Instant
}
