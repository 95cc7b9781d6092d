import Foundation

extension Message: Codable {
    private enum TypeKey: String, CodingKey { case type }

    package var type: String {
        switch self {
        case .challenge: "challenge"
        case .welcome: "welcome"
        case .joined: "joined"
        case .peerJoined: "peer-joined"
        case .peerLeft: "peer-left"
        case .relayOpened: "relay-opened"
        case .relayIncoming: "relay-incoming"
        case .relayClosed: "relay-closed"
        case .punch: "punch"
        case .error: "error"
        case .open: "open"
        case .hello: "hello"
        case .join: "join"
        case .leave: "leave"
        case .relayOpen: "relay-open"
        case .relayClose: "relay-close"
        case .punchRequest: "punch-request"
        case .punchResult: "punch-result"
        }
    }

    package init(from decoder: any Decoder) throws {
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
        case "punch": self = .punch(try Punch(from: decoder))
        case "punch-request": self = .punchRequest(try PunchRequest(from: decoder))
        case "punch-result": self = .punchResult(try PunchResult(from: decoder))
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

    package func encode(to encoder: any Encoder) throws {
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
        case .punch(let body): try body.encode(to: encoder)
        case .punchRequest(let body): try body.encode(to: encoder)
        case .punchResult(let body): try body.encode(to: encoder)
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
package enum MessageCodec {
    package enum DecodeError: Error, Equatable {
        case tooLarge
        case malformed
    }

    package static func encode(_ message: Message) -> String {
        // Encoding these value types cannot fail: every field is a string, number, array or nested struct.
        guard let data = try? JSONEncoder().encode(message) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    package static func decode(_ text: String, maxBytes: Int) throws(DecodeError) -> Message {
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
package enum RelayFrame {
    package static let headerSize = 4
}
