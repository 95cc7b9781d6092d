internal import Foundation
public import SignalingProtocol
internal import Synchronization

/// How a connection to a peer was made, for `status` and the `--json` progress (docs/nat.md).
public enum ConnectionPath: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Dialled at a local or reflexive candidate, or accepted on the listening port.
    case direct
    /// Dialled at the port mapping the peer's router granted.
    case mapped
    /// Through a hole punched in both NATs (TCP simultaneous open).
    case punched
    /// Through the signaling server's relay.
    case relayed

    public var description: String { rawValue }
}

/// One open connection: the peer, the swarm and the path.
public struct PeerLink: Sendable, Hashable {
    /// The peer's device key (32 bytes).
    public var device: [UInt8]
    public var swarm: SwarmID
    public var path: ConnectionPath
    /// Why a relayed connection is relayed, as this side knows it (nil for the other paths): which candidates failed,
    /// whether a punch was arranged, or that the peer opened the relay.
    public var reason: String?
    /// The channel of the connection that carries this swarm: 0 for the swarm the connection was made for, another
    /// for a swarm attached to a connection to the same device (docs/protocol.md §5.4).
    public var channel: UInt16 = 0

    /// The first 8 bytes of the device key in hex, as logs name peers.
    public var shortDevice: String {
        device.prefix(8).map { String(format: "%02x", $0) }.joined()
    }
}

/// The open connections and their paths, behind a lock so that progress printers read them without awaiting the
/// node's actor.
final class LinkTable: Sendable {
    private let state = Mutex<(next: Int, links: [Int: PeerLink])>((0, [:]))

    func open(_ link: PeerLink) -> Int {
        state.withLock {
            $0.next += 1
            $0.links[$0.next] = link
            return $0.next
        }
    }

    func close(_ token: Int) {
        state.withLock { _ = $0.links.removeValue(forKey: token) }
    }

    var all: [PeerLink] {
        state.withLock { $0.links.sorted { $0.key < $1.key }.map(\.value) }
    }
}

extension SwarmNode {
    /// Records an open connection; returns the token that ``linkClosed(_:)`` takes.
    func linkOpened(
        _ device: [UInt8], swarm: SwarmID, path: ConnectionPath, reason: String? = nil, channel: UInt16 = 0
    ) -> Int {
        linkTable.open(
            PeerLink(
                device: device, swarm: swarm, path: path, reason: path == .relayed ? reason : nil, channel: channel))
    }

    func linkClosed(_ token: Int) {
        linkTable.close(token)
    }

    /// Every open connection with its path, oldest first (a connection the swarm refused as a duplicate of another
    /// is listed until it closes, a moment later).
    public nonisolated var peerLinks: [PeerLink] {
        linkTable.all
    }

    /// Open connections by path.
    public nonisolated var pathCounts: [ConnectionPath: Int] {
        linkTable.all.reduce(into: [:]) { $0[$1.path, default: 0] += 1 }
    }

    /// The addresses a join announces: the local candidate `host:port` (plain, as every client writes it), and the
    /// mapped one when the router granted a mapping. (The signaling client adds the reflexive one.)
    func announcedAddresses(host: String, port: Int) -> [String] {
        var addresses = ["\(Candidate(kind: .local, host: host, port: UInt16(clamping: port)).text)"]
        if let mapped { addresses.append(mapped.text) }
        return addresses
    }
}
