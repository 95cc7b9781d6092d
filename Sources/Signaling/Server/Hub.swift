import SignalingProtocol

/// Membership of every swarm and every relay stream: who is connected, who joined what, who relays to whom.
/// All decisions are made here, in one actor; sessions only carry the results to their sockets.
actor Hub {
    struct Entry {
        let handle: SessionHandle
        /// Joined swarms and the addresses announced in each.
        var swarms: [SwarmID: [String]] = [:]
        var relays: Set<UInt32> = []
    }

    /// What all authenticated connections from one client address hold together; the entry goes with the
    /// address's last connection, so departed devices leave nothing behind.
    private struct AddressUsage {
        var connections = 0
        var memberships = 0
        var announcedBytes = 0
        let relayBucket: SharedTokenBucket
    }

    private var sessions: [DeviceID: Entry] = [:]
    private var swarms: [SwarmID: Set<DeviceID>] = [:]
    private var addresses: [String: AddressUsage] = [:]
    private var relays: [UInt32: Relay] = [:]
    private var nextStream: UInt32 = 1
    private let limits: SignalServerConfiguration
    /// Hole punching (Hub+Punch.swift): when each pair last asked, attempts awaiting their result.
    var punchTimes: [PunchPair: ContinuousClock.Instant] = [:]
    /// When each device last had spray punches granted (at most ``maxSpraysPerWindow`` kept per device).
    var sprayTimes: [DeviceID: [ContinuousClock.Instant]] = [:]
    var pendingPunches: [UInt32: PendingPunch] = [:]
    var nextPunch: UInt32 = 1

    init(limits: SignalServerConfiguration) {
        self.limits = limits
    }

    /// Adds an authenticated connection. An older connection of the same device is closed and cleaned up
    /// (the peer reconnected before the server noticed the old socket was gone).
    func register(_ handle: SessionHandle) {
        if let old = sessions[handle.device] {
            remove(old)
            old.handle.close(.replaced, "the same device connected again")
        }
        sessions[handle.device] = Entry(handle: handle)
        let rate = limits.relayBytesPerSecondPerAddress
        addresses[
            handle.remoteAddress,
            default: AddressUsage(
                relayBucket: SharedTokenBucket(rate: rate, burst: max(rate, Double(limits.maxFrameSize))))
        ].connections += 1
    }

    /// Removes a connection that ended; a no-op if a newer connection of the device already replaced it.
    func unregister(_ handle: SessionHandle) {
        guard let entry = sessions[handle.device], entry.handle === handle else { return }
        remove(entry)
    }

    private func remove(_ entry: Entry) {
        let device = entry.handle.device
        for stream in entry.relays { closeRelay(stream, except: entry.handle) }
        for swarm in entry.swarms.keys { removeMember(device, from: swarm) }
        sessions[device] = nil
        let address = entry.handle.remoteAddress
        guard var usage = addresses[address] else { return }
        usage.connections -= 1
        usage.memberships -= entry.swarms.count
        usage.announcedBytes -= entry.swarms.values.reduce(0) { $0 + Self.byteCount($1) }
        addresses[address] = usage.connections > 0 ? usage : nil
    }

    private static func byteCount(_ addresses: [String]) -> Int {
        addresses.reduce(0) { $0 + $1.utf8.count }
    }

    private func removeMember(_ device: DeviceID, from swarm: SwarmID) {
        guard var members = swarms[swarm], members.remove(device) != nil else { return }
        swarms[swarm] = members.isEmpty ? nil : members
        let event = Message.peerLeft(.init(swarm: swarm, device: device))
        for member in members { sessions[member]?.handle.send(event) }
    }

    /// Joins (or re-announces in) a swarm; returns candidate peers, or the reason for refusal.
    func join(_ handle: SessionHandle, swarm: SwarmID, addresses: [String]) -> Result<[PeerInfo], SignalErrorCode> {
        guard var entry = sessions[handle.device], entry.handle === handle else { return .failure(.unexpected) }
        let previous = entry.swarms[swarm]
        if previous == nil, entry.swarms.count >= limits.maxSwarmsPerConnection {
            return .failure(.tooManySwarms)
        }
        // The address's quotas: memberships and announced bytes of all its connections together.
        guard var usage = self.addresses[handle.remoteAddress] else { return .failure(.unexpected) }
        if previous == nil {
            guard usage.memberships < limits.maxMembershipsPerAddress else { return .failure(.tooManySwarms) }
            usage.memberships += 1
        }
        usage.announcedBytes += Self.byteCount(addresses) - Self.byteCount(previous ?? [])
        guard usage.announcedBytes <= limits.maxAnnouncedBytesPerAddress else { return .failure(.badAddresses) }
        self.addresses[handle.remoteAddress] = usage
        entry.swarms[swarm] = addresses
        sessions[handle.device] = entry
        var members = swarms[swarm] ?? []
        let others = members.subtracting([handle.device])
        members.insert(handle.device)
        swarms[swarm] = members
        let event = Message.peerJoined(.init(swarm: swarm, peer: PeerInfo(device: handle.device, addresses: addresses)))
        for member in others { sessions[member]?.handle.send(event) }
        let sample =
            others.count <= limits.maxCandidates ? Array(others) : Array(others.shuffled().prefix(limits.maxCandidates))
        let peers = sample.compactMap { device -> PeerInfo? in
            guard let addresses = sessions[device]?.swarms[swarm] else { return nil }
            return PeerInfo(device: device, addresses: addresses)
        }
        return .success(peers)
    }

    /// Leaves a swarm; relays of this connection in that swarm close.
    func leave(_ handle: SessionHandle, swarm: SwarmID) {
        guard var entry = sessions[handle.device], entry.handle === handle, let announced = entry.swarms[swarm] else {
            return
        }
        entry.swarms[swarm] = nil
        sessions[handle.device] = entry
        addresses[handle.remoteAddress]?.memberships -= 1
        addresses[handle.remoteAddress]?.announcedBytes -= Self.byteCount(announced)
        for stream in entry.relays where relays[stream]?.swarm == swarm { closeRelay(stream, except: nil) }
        removeMember(handle.device, from: swarm)
    }

    /// Opens a relay stream from `handle` to `peer`; both must be members of `swarm`.
    func openRelay(_ handle: SessionHandle, swarm: SwarmID, peer: DeviceID) -> Result<UInt32, SignalErrorCode> {
        guard let entry = sessions[handle.device], entry.handle === handle else { return .failure(.unexpected) }
        guard entry.swarms[swarm] != nil else { return .failure(.notJoined) }
        guard peer != handle.device, let target = sessions[peer], target.swarms[swarm] != nil else {
            return .failure(.noSuchPeer)
        }
        guard entry.relays.count < limits.maxRelaysPerConnection, target.relays.count < limits.maxRelaysPerConnection
        else {
            return .failure(.tooManyRelays)
        }
        var stream = nextStream
        while stream == 0 || relays[stream] != nil { stream &+= 1 }
        nextStream = stream &+ 1
        let burst = max(limits.relayBytesPerSecond, Double(limits.maxFrameSize))
        relays[stream] = Relay(
            id: stream, swarm: swarm, opener: handle, acceptor: target.handle,
            bytesPerSecond: limits.relayBytesPerSecond, burst: burst)
        sessions[handle.device]?.relays.insert(stream)
        sessions[peer]?.relays.insert(stream)
        target.handle.send(.relayIncoming(.init(stream: stream, swarm: swarm, peer: handle.device)))
        return .success(stream)
    }

    /// The relay and its other end for a frame that `handle` sent on `stream`, and the byte budget of the
    /// sender's address (shared by all its connections).
    func route(
        _ stream: UInt32, from handle: SessionHandle
    ) -> (
        relay: Relay, target: SessionHandle, addressBucket: SharedTokenBucket
    )? {
        guard let relay = relays[stream], let target = relay.otherEnd(from: handle),
            let usage = addresses[handle.remoteAddress]
        else { return nil }
        return (relay, target, usage.relayBucket)
    }

    /// Closes a stream at the request of one end (the other end is told).
    func closeRelay(_ stream: UInt32, by handle: SessionHandle) {
        guard let relay = relays[stream], relay.otherEnd(from: handle) != nil else { return }
        closeRelay(stream, except: handle)
    }

    private func closeRelay(_ stream: UInt32, except: SessionHandle?) {
        guard let relay = relays.removeValue(forKey: stream) else { return }
        for end in [relay.opener, relay.acceptor] {
            sessions[end.device]?.relays.remove(stream)
            if end !== except { end.send(.relayClosed(.init(stream: stream))) }
        }
    }

    /// The entry of `handle`'s device, if `handle` is its current connection.
    func sessionEntry(_ handle: SessionHandle) -> Entry? {
        guard let entry = sessions[handle.device], entry.handle === handle else { return nil }
        return entry
    }

    /// The entry of `device`'s current connection.
    func sessionEntry(device: DeviceID) -> Entry? {
        sessions[device]
    }

    /// Gauges for `/metrics`.
    func stats() -> (swarms: Int, members: Int, relays: Int) {
        (swarms.count, swarms.values.reduce(0) { $0 + $1.count }, relays.count)
    }

    /// Memberships and announced bytes held by `address` now (for tests).
    func usage(of address: String) -> (memberships: Int, announcedBytes: Int)? {
        addresses[address].map { ($0.memberships, $0.announcedBytes) }
    }
}
