internal import Logging
internal import SignalingProtocol

/// The port mapping's lifecycle (docs/nat.md): asked for when the listener is bound, announced as a `mapped@`
/// candidate in every swarm, renewed at half its lease, withdrawn when a renewal fails, deleted at shutdown.
extension SwarmNode {
    func startPortMapping(port: UInt16) {
        guard mappingTask == nil else { return }
        mappingTask = Task { [weak self] in
            guard let found = await PortMapper.discover(port: port) else {
                await self?.mappingSettled(nil, mapper: nil)
                return
            }
            let mapper = found.mapper
            var mapping = found.mapping
            await self?.mappingSettled(mapping, mapper: mapper)
            while !Task.isCancelled {
                // Renewed at half the lease the router granted (at least 10 s apart, whatever it granted).
                let wait = mapping.map { Duration.seconds(Int(max($0.lifetime / 2, 10))) } ?? .seconds(300)
                do { try await Task.sleep(for: wait) } catch { return }
                if let current = mapping, await mapper.renew(current) { continue }
                mapping = await mapper.map(port: port)
                await self?.mappingSettled(mapping, mapper: mapper)
            }
        }
    }

    /// A mapping was granted, renewed under another port, or lost: the swarms announce the change.
    func mappingSettled(_ mapping: PortMapper.Mapping?, mapper: PortMapper?) async {
        let candidate = mapping.map { Candidate(kind: .mapped, host: $0.externalAddress, port: $0.externalPort) }
        if let mapping {
            logger.info(
                "the router mapped the peer port",
                metadata: [
                    "mapped": "\(candidate?.hostAndPort ?? "")", "port": "\(mapping.internalPort)",
                    "protocol": "\(mapper?.protocolName ?? "-")", "lifetime": "\(mapping.lifetime)",
                ])
        } else {
            logger.debug("no port mapping (no PCP or NAT-PMP gateway and no UPnP IGD on the LAN, or it refused)")
        }
        currentMapping = mapping.flatMap { mapping in mapper.map { (mapper: $0, mapping: mapping) } }
        guard candidate != mapped else { return }
        mapped = candidate
        guard let signal else { return }
        let addresses = announcedAddresses(host: advertiseHost(), port: listenPort)
        for id in entries.keys { await signal.announce(swarm: id, addresses: addresses) }
    }

    /// Stops renewing and deletes the mapping at the router.
    func stopPortMapping() async {
        mappingTask?.cancel()
        mappingTask = nil
        guard let current = currentMapping else { return }
        currentMapping = nil
        mapped = nil
        let deleted = await current.mapper.unmap(current.mapping)
        logger.debug("port mapping deleted", metadata: ["deleted": "\(deleted)"])
    }
}
