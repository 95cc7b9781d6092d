import Foundation

/// A candidate peer: a swarm member's device key and the addresses it announced.
public struct PeerInfo: Hashable, Sendable, Codable {
    /// The peer's device key.
    public var device: DeviceID
    /// `host:port` strings the peer says it can be reached at (possibly none: then only a relay reaches it).
    public var addresses: [String]

    public init(device: DeviceID, addresses: [String]) {
        self.device = device
        self.addresses = addresses
    }
}

/// Error codes the server sends in `error` messages (docs/signaling.md, "Errors").
public enum SignalErrorCode: String, Sendable, Codable, Hashable, Error {
    case badMessage = "bad-message"
    case unexpected = "unexpected"
    case tooLarge = "too-large"
    case rateLimited = "rate-limited"
    case timeout = "timeout"
    case badProof = "bad-proof"
    case badJoinKey = "bad-join-key"
    case banned = "banned"
    case badSwarmProof = "bad-swarm-proof"
    case badAddresses = "bad-addresses"
    case tooManySwarms = "too-many-swarms"
    case notJoined = "not-joined"
    case noSuchPeer = "no-such-peer"
    case tooManyRelays = "too-many-relays"
    case replaced = "replaced"
    case overloaded = "overloaded"
    case unsupportedVersion = "unsupported-version"
    /// A `punch-request` the server cannot carry out: the peer's client does not punch, or the pair asked too often.
    case cannotPunch = "cannot-punch"
}

/// Every JSON text message, in both directions. Each is one object whose `type` names the case.
package enum Message: Sendable, Equatable {
    // server → client
    case challenge(Challenge)
    case welcome(Welcome)
    case joined(Joined)
    case peerJoined(PeerEvent)
    case peerLeft(PeerLeft)
    case relayOpened(RelayOpened)
    case relayIncoming(RelayIncoming)
    case relayClosed(RelayRef)
    case punch(Punch)
    case error(ErrorMessage)
    // client → server
    case open(Open)
    case hello(Hello)
    case join(Join)
    case leave(Leave)
    case relayOpen(RelayOpen)
    case relayClose(RelayRef)
    case punchRequest(PunchRequest)
    case punchResult(PunchResult)

    /// The client's first message. The server writes nothing before it: bytes a server sends right behind its
    /// `101 Switching Protocols` can arrive in the client's last HTTP read and be lost while the client switches to
    /// WebSocket framing (seen here with the NIO WebSocket client under load), so the client speaks first.
    package struct Open: Codable, Sendable, Equatable {
        package var version: Int

        package init(version: Int) {
            self.version = version
        }
    }
    package struct Challenge: Codable, Sendable, Equatable {
        package var version: Int
        package var nonce: HexBytes

        package init(version: Int, nonce: HexBytes) {
            self.version = version
            self.nonce = nonce
        }
    }
    /// `features` (optional; older clients send none) names what the client understands beyond version 1:
    /// `punch` (the server may send it `punch`), `spray` (it takes part in a punch with a symmetric NAT: a `punch` may
    /// carry `spray`). At most ``maxFeatures`` are read, each at most 32 bytes.
    package struct Hello: Codable, Sendable, Equatable {
        package var version: Int
        package var device: DeviceID
        package var signature: HexBytes
        package var joinProof: HexBytes?
        package var features: [String]?

        package static let maxFeatures = 8
        package static let punchFeature = "punch"
        package static let sprayFeature = "spray"

        package init(
            version: Int, device: DeviceID, signature: HexBytes, joinProof: HexBytes? = nil, features: [String]? = nil
        ) {
            self.version = version
            self.device = device
            self.signature = signature
            self.joinProof = joinProof
            self.features = features
        }

        /// Whether the client asked for `feature` (within the bounds above).
        package func has(_ feature: String) -> Bool {
            (features ?? []).prefix(Self.maxFeatures).contains { $0.utf8.count <= 32 && $0 == feature }
        }
    }
    /// `observedAddress` and `observedPort` (both optional: older servers send neither; behind a trusted proxy only
    /// the address) are where the server saw the connection come from: the client's reflexive address.
    /// `probePort` (optional) is the server's second observation point: another port of its host that answers
    /// `GET /v1/observed` over plain HTTP (docs/nat.md, "Which NAT is symmetric").
    package struct Welcome: Codable, Sendable, Equatable {
        package var device: DeviceID
        package var observedAddress: String?
        package var observedPort: Int?
        package var probePort: Int?

        package init(device: DeviceID, observedAddress: String? = nil, observedPort: Int? = nil, probePort: Int? = nil)
        {
            self.device = device
            self.observedAddress = observedAddress
            self.observedPort = observedPort
            self.probePort = probePort
        }

        /// The observed address, if the server sent a usable one (see ``ObservedAddress/init(address:port:)``).
        package var observed: ObservedAddress? {
            ObservedAddress(address: observedAddress, port: observedPort)
        }

        /// The second observation port, if the server sent a usable one (1...65535): the client connects to it.
        package var validProbePort: Int? {
            probePort.flatMap { (1...65535).contains($0) ? $0 : nil }
        }
    }
    package struct Join: Codable, Sendable, Equatable {
        package var id: UInt64
        package var swarm: SwarmID
        package var signature: HexBytes
        package var addresses: [String]

        package init(id: UInt64, swarm: SwarmID, signature: HexBytes, addresses: [String]) {
            self.id = id
            self.swarm = swarm
            self.signature = signature
            self.addresses = addresses
        }
    }
    package struct Joined: Codable, Sendable, Equatable {
        package var id: UInt64
        package var swarm: SwarmID
        package var peers: [PeerInfo]

        package init(id: UInt64, swarm: SwarmID, peers: [PeerInfo]) {
            self.id = id
            self.swarm = swarm
            self.peers = peers
        }
    }
    package struct PeerEvent: Codable, Sendable, Equatable {
        package var swarm: SwarmID
        package var peer: PeerInfo

        package init(swarm: SwarmID, peer: PeerInfo) {
            self.swarm = swarm
            self.peer = peer
        }
    }
    package struct PeerLeft: Codable, Sendable, Equatable {
        package var swarm: SwarmID
        package var device: DeviceID

        package init(swarm: SwarmID, device: DeviceID) {
            self.swarm = swarm
            self.device = device
        }
    }
    package struct Leave: Codable, Sendable, Equatable {
        package var swarm: SwarmID

        package init(swarm: SwarmID) {
            self.swarm = swarm
        }
    }
    package struct RelayOpen: Codable, Sendable, Equatable {
        package var id: UInt64
        package var swarm: SwarmID
        package var peer: DeviceID

        package init(id: UInt64, swarm: SwarmID, peer: DeviceID) {
            self.id = id
            self.swarm = swarm
            self.peer = peer
        }
    }
    package struct RelayOpened: Codable, Sendable, Equatable {
        package var id: UInt64
        package var stream: UInt32

        package init(id: UInt64, stream: UInt32) {
            self.id = id
            self.stream = stream
        }
    }
    package struct RelayIncoming: Codable, Sendable, Equatable {
        package var stream: UInt32
        package var swarm: SwarmID
        package var peer: DeviceID

        package init(stream: UInt32, swarm: SwarmID, peer: DeviceID) {
            self.stream = stream
            self.swarm = swarm
            self.peer = peer
        }
    }
    package struct RelayRef: Codable, Sendable, Equatable {
        package var stream: UInt32

        package init(stream: UInt32) {
            self.stream = stream
        }
    }
    /// client → server: ask the server to coordinate a hole punch with `peer`, a member of `swarm` (docs/nat.md).
    /// `spray` (optional): the requester's NAT is symmetric, so the punch is a spray punch (docs/nat.md, "Spray
    /// punching").
    package struct PunchRequest: Codable, Sendable, Equatable {
        package var id: UInt64
        package var swarm: SwarmID
        package var peer: DeviceID
        package var spray: Bool?

        package init(id: UInt64, swarm: SwarmID, peer: DeviceID, spray: Bool? = nil) {
            self.id = id
            self.swarm = swarm
            self.peer = peer
            self.spray = spray
        }
    }
    /// A spray punch's part for one end (docs/nat.md, "Spray punching"): the end behind the symmetric NAT opens many
    /// connections to the other's reflexive candidate (`open`); the other dials random ports of `host`, the first
    /// end's public address as the server saw it, from its listening port (`probe`).
    package struct Spray: Codable, Sendable, Equatable {
        package enum Role: String, Codable, Sendable {
            case open
            case probe
        }
        package var role: Role
        package var host: String?

        package init(role: Role, host: String? = nil) {
            self.role = role
            self.host = host
        }
    }
    /// server → both ends: dial `peer` (its device key and announced addresses) from the listening port after
    /// `delayMs` milliseconds (0–5000), timed so that both ends start together. `id` names the attempt in
    /// `punch-result`. `spray` (optional, only to a client that said `spray` in `hello`): this end's part of a spray
    /// punch instead.
    package struct Punch: Codable, Sendable, Equatable {
        package var id: UInt32
        package var swarm: SwarmID
        package var peer: PeerInfo
        package var delayMs: Int
        package var spray: Spray?

        package init(id: UInt32, swarm: SwarmID, peer: PeerInfo, delayMs: Int, spray: Spray? = nil) {
            self.id = id
            self.swarm = swarm
            self.peer = peer
            self.delayMs = delayMs
            self.spray = spray
        }
    }
    /// client → server: how the attempt `id` ended (counted in the server's metrics; the requester's report only).
    package struct PunchResult: Codable, Sendable, Equatable {
        package var id: UInt32
        package var connected: Bool

        package init(id: UInt32, connected: Bool) {
            self.id = id
            self.connected = connected
        }
    }
    package struct ErrorMessage: Codable, Sendable, Equatable {
        package var id: UInt64?
        package var code: SignalErrorCode
        package var message: String
        package var retryAfter: Double?

        package init(id: UInt64? = nil, code: SignalErrorCode, message: String, retryAfter: Double? = nil) {
            self.id = id
            self.code = code
            self.message = message
            self.retryAfter = retryAfter
        }
    }
}
