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
}

/// Every JSON text message, in both directions. Each is one object whose `type` names the case.
enum Message: Sendable, Equatable {
    // server → client
    case challenge(Challenge)
    case welcome(Welcome)
    case joined(Joined)
    case peerJoined(PeerEvent)
    case peerLeft(PeerLeft)
    case relayOpened(RelayOpened)
    case relayIncoming(RelayIncoming)
    case relayClosed(RelayRef)
    case error(ErrorMessage)
    // client → server
    case open(Open)
    case hello(Hello)
    case join(Join)
    case leave(Leave)
    case relayOpen(RelayOpen)
    case relayClose(RelayRef)

    /// The client's first message. The server writes nothing before it: bytes a server sends right behind its
    /// `101 Switching Protocols` can arrive in the client's last HTTP read and be lost while the client switches to
    /// WebSocket framing (seen here with the NIO WebSocket client under load), so the client speaks first.
    struct Open: Codable, Sendable, Equatable {
        var version: Int
    }
    struct Challenge: Codable, Sendable, Equatable {
        var version: Int
        var nonce: HexBytes
    }
    struct Hello: Codable, Sendable, Equatable {
        var version: Int
        var device: DeviceID
        var signature: HexBytes
        var joinProof: HexBytes?
    }
    struct Welcome: Codable, Sendable, Equatable {
        var device: DeviceID
    }
    struct Join: Codable, Sendable, Equatable {
        var id: UInt64
        var swarm: SwarmID
        var signature: HexBytes
        var addresses: [String]
    }
    struct Joined: Codable, Sendable, Equatable {
        var id: UInt64
        var swarm: SwarmID
        var peers: [PeerInfo]
    }
    struct PeerEvent: Codable, Sendable, Equatable {
        var swarm: SwarmID
        var peer: PeerInfo
    }
    struct PeerLeft: Codable, Sendable, Equatable {
        var swarm: SwarmID
        var device: DeviceID
    }
    struct Leave: Codable, Sendable, Equatable {
        var swarm: SwarmID
    }
    struct RelayOpen: Codable, Sendable, Equatable {
        var id: UInt64
        var swarm: SwarmID
        var peer: DeviceID
    }
    struct RelayOpened: Codable, Sendable, Equatable {
        var id: UInt64
        var stream: UInt32
    }
    struct RelayIncoming: Codable, Sendable, Equatable {
        var stream: UInt32
        var swarm: SwarmID
        var peer: DeviceID
    }
    struct RelayRef: Codable, Sendable, Equatable {
        var stream: UInt32
    }
    struct ErrorMessage: Codable, Sendable, Equatable {
        var id: UInt64?
        var code: SignalErrorCode
        var message: String
        var retryAfter: Double?
    }
}

extension Message: Codable {
    private enum TypeKey: String, CodingKey { case type }

    var type: String {
        switch self {
        case .challenge: "challenge"
        case .welcome: "welcome"
        case .joined: "joined"
        case .peerJoined: "peer-joined"
        case .peerLeft: "peer-left"
        case .relayOpened: "relay-opened"
        case .relayIncoming: "relay-incoming"
        case .relayClosed: "relay-closed"
        case .error: "error"
        case .open: "open"
        case .hello: "hello"
        case .join: "join"
        case .leave: "leave"
        case .relayOpen: "relay-open"
        case .relayClose: "relay-close"
        }
    }

    init(from decoder: any Decoder) throws {
        let type = try decoder.container(keyedBy: TypeKey.self).decode(String.self, forKey: .type)
        switch type {
        case "challenge": self = .challenge(try Challenge(from: decoder))
        case "welcome": self = .welcome(try Welcome(from: decoder))
        case "joined": self = .joined(try Joined(from: decoder))
        case "peer-joined": self = .peerJoined(try PeerEvent(from: decoder))
        case "peer-left": self = .peerLeft(try PeerLeft(from: decoder))
        case "relay-opened": self = .relayOpened(try RelayOpened(from: decoder))
        case "relay-incoming": self = .relayIncoming(try RelayIncoming(from: decoder))
        case "relay-closed": self = .relayClosed(try RelayRef(from: decoder))
        case "error": self = .error(try ErrorMessage(from: decoder))
        case "open": self = .open(try Open(from: decoder))
        case "hello": self = .hello(try Hello(from: decoder))
        case "join": self = .join(try Join(from: decoder))
        case "leave": self = .leave(try Leave(from: decoder))
        case "relay-open": self = .relayOpen(try RelayOpen(from: decoder))
        case "relay-close": self = .relayClose(try RelayRef(from: decoder))
        default:
            throw DecodingError.dataCorrupted(.init(codingPath: [TypeKey.type], debugDescription: "unknown type"))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: TypeKey.self)
        try container.encode(type, forKey: .type)
        switch self {
        case .challenge(let body): try body.encode(to: encoder)
        case .welcome(let body): try body.encode(to: encoder)
        case .joined(let body): try body.encode(to: encoder)
        case .peerJoined(let body): try body.encode(to: encoder)
        case .peerLeft(let body): try body.encode(to: encoder)
        case .relayOpened(let body): try body.encode(to: encoder)
        case .relayIncoming(let body): try body.encode(to: encoder)
        case .relayClosed(let body): try body.encode(to: encoder)
        case .error(let body): try body.encode(to: encoder)
        case .open(let body): try body.encode(to: encoder)
        case .hello(let body): try body.encode(to: encoder)
        case .join(let body): try body.encode(to: encoder)
        case .leave(let body): try body.encode(to: encoder)
        case .relayOpen(let body): try body.encode(to: encoder)
        case .relayClose(let body): try body.encode(to: encoder)
        }
    }
}

/// JSON coding of ``Message`` with the size cap checked before parsing.
enum MessageCodec {
    enum DecodeError: Error, Equatable {
        case tooLarge
        case malformed
    }

    static func encode(_ message: Message) -> String {
        // Encoding these value types cannot fail: every field is a string, number, array or nested struct.
        guard let data = try? JSONEncoder().encode(message) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    static func decode(_ text: String, maxBytes: Int) throws(DecodeError) -> Message {
        let utf8 = text.utf8
        guard utf8.count <= maxBytes else { throw .tooLarge }
        do {
            return try JSONDecoder().decode(Message.self, from: Data(utf8))
        } catch {
            throw .malformed
        }
    }
}

/// Binary relay frames: a 4-byte big-endian stream id followed by opaque bytes (docs/signaling.md, "Relay").
enum RelayFrame {
    static let headerSize = 4
}
