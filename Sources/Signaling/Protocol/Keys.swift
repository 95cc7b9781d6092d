import HarpBasics

/// A 32-byte Ed25519 public key, written as 64 lowercase hex digits on the wire.
public struct PublicKey32: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The raw 32 bytes.
    public let bytes: [UInt8]

    /// Wraps 32 raw bytes; `nil` for any other length.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        self.bytes = bytes
    }

    /// For bytes whose length is 32 by construction (a swift-crypto key's raw representation).
    package init(exactly bytes: [UInt8]) {
        precondition(bytes.count == 32, "an Ed25519 public key is 32 bytes")
        self.bytes = bytes
    }

    /// Parses 64 hex digits; `nil` for anything else.
    public init?(hex: String) {
        guard let bytes = Hex.decode(hex), bytes.count == 32 else { return nil }
        self.bytes = bytes
    }

    /// The key as 64 lowercase hex digits.
    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let key = PublicKey32(hex: text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not a 32-byte hex key"))
        }
        self = key
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hex)
    }
}

/// The swarm id S: the public half of a swarm's Ed25519 signing key. The server never learns more about a swarm.
public typealias SwarmID = PublicKey32
/// A peer's device key: the public half of its installation's Ed25519 key.
public typealias DeviceID = PublicKey32

/// Bytes that are hex on the wire (nonces, signatures, proofs), with a fixed expected length checked by the user.
package struct HexBytes: Hashable, Sendable, Codable {
    package let bytes: [UInt8]

    package init(_ bytes: [UInt8]) { self.bytes = bytes }

    package init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard text.utf8.count <= 512, let bytes = Hex.decode(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not hex"))
        }
        self.bytes = bytes
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Hex.encode(bytes))
    }
}
