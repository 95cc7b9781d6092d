internal import Logging
internal import SignalingProtocol
internal import SwarmKit

/// A direct connection to a device that carries every swarm this node shares with it (docs/protocol.md §5.4).
struct TrunkEntry: Sendable {
    let trunk: PeerTrunk
    /// How the connection was made; each swarm on it counts that path.
    let path: ConnectionPath
}

/// Trunks: once two devices have a direct connection for one swarm, the other swarms they share are attached to it
/// as channels, each proven by its own key, instead of being dialled (and, behind NATs, punched) again.
extension SwarmNode {
    /// A connection made for one swarm, as a trunk: that swarm goes on its channel 0 (`PeerTrunk.first`), and the
    /// peer's attaches of the other swarms open here on channels of their own. A direct connection whose peer offers
    /// channels is registered under its device key until it closes, so that this side attaches further swarms to it
    /// (`attachThroughTrunk`).
    func makeTrunk(_ connection: PeerConnection, path: ConnectionPath) -> PeerTrunk {
        let device = connection.session.remoteDeviceKey
        let trunk = PeerTrunk(
            connection,
            offer: { [weak self] swarmID in await self?.acceptance(of: swarmID, from: device, path: path) },
            logger: logger)
        if path != .relayed, connection.session.carriesChannels {
            trunks[device, default: []].append(TrunkEntry(trunk: trunk, path: path))
            Task { [weak self] in
                await trunk.closed()
                await self?.dropTrunk(trunk, of: device)
            }
        }
        trunk.start()
        return trunk
    }

    private func dropTrunk(_ trunk: PeerTrunk, of device: [UInt8]) {
        trunks[device]?.removeAll { $0.trunk === trunk }
        if trunks[device]?.isEmpty == true { trunks[device] = nil }
    }

    /// The direct connections to `device` that can carry another swarm.
    func trunks(to device: [UInt8]) -> [TrunkEntry] {
        (trunks[device] ?? []).filter { $0.trunk.canAttach }
    }

    /// The peer's `attach` of swarm `swarmID` on a trunk: accepted when that swarm is open here and the peer is
    /// neither banned nor already connected in it.
    private func acceptance(
        of swarmID: [UInt8], from device: [UInt8], path: ConnectionPath
    ) async
        -> PeerTrunk.Acceptance?
    {
        guard let id = PublicKey32(bytes: swarmID), let entry = entries[id] else { return nil }
        if await entry.swarm.isBanned(device) { return nil }
        if await entry.swarm.isConnected(to: device) { return nil }
        let capabilities = peerConfiguration(entry, expectedKey: device).capabilities
        return PeerTrunk.Acceptance(swarmKey: entry.keys.swarmKey, capabilities: capabilities) { [weak self] link in
            await self?.serveAttached(link, in: id, entry.swarm, path: path, initiatedByUs: false)
        }
    }

    /// Attaches swarm `id` to a direct connection to `device` that carries another swarm, if there is one and the
    /// peer accepts; the swarm then serves the new channel. `upgrading`: the peer may be connected through the relay
    /// (the attached channel then replaces that link, as a direct dial would).
    func attachThroughTrunk(_ id: SwarmID, to device: [UInt8], upgrading: Bool = false) async -> Bool {
        for candidate in trunks(to: device) {
            guard let entry = entries[id] else { return false }
            if upgrading ? hasDirectLink(id, to: device) : await entry.swarm.isConnected(to: device) { return true }
            let capabilities = peerConfiguration(entry, expectedKey: device).capabilities
            guard
                let link = await candidate.trunk.attach(
                    swarmID: entry.keys.swarmID, swarmKey: entry.keys.swarmKey, capabilities: capabilities)
            else { continue }
            logger.debug(
                "attached a swarm to a peer's connection",
                metadata: ["swarm": "\(id)", "channel": "\(link.channel)", "path": "\(candidate.path)"])
            Task { await self.serveAttached(link, in: id, entry.swarm, path: candidate.path, initiatedByUs: true) }
            return true
        }
        return false
    }

    /// Claims the dialling of `device`: true when no other swarm is dialling it (the caller must `endDial`);
    /// otherwise waits until that dial has ended and returns false (the caller then attaches to its connection, if
    /// it made one). So swarms that open together make one connection to a device, not one each.
    func claimDial(_ device: [UInt8]) async -> Bool {
        guard dialsInFlight[device] != nil else {
            dialsInFlight[device] = []
            return true
        }
        await withCheckedContinuation { dialsInFlight[device, default: []].append($0) }
        return false
    }

    /// Ends the dialling that `claimDial` granted.
    func endDial(_ device: [UInt8]) {
        for waiter in dialsInFlight.removeValue(forKey: device) ?? [] { waiter.resume() }
    }

    private func serveAttached(
        _ link: SwarmLink, in id: SwarmID, _ swarm: Swarm, path: ConnectionPath, initiatedByUs: Bool
    ) async {
        let token = linkOpened(link.session.remoteDeviceKey, swarm: id, path: path, channel: link.channel)
        await swarm.run(link: link, initiatedByUs: initiatedByUs, address: nil)
        linkClosed(token)
    }
}
