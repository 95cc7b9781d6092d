/// The wire values the engine's events and actions carry, as `Codable` values for recordings
/// (`harp-cli get --record-engine`). Decoding checks what the wire decoder checks.
extension GoodbyeReason: Codable {}

extension Bitfield: Codable {
    private enum CodingKeys: String, CodingKey { case chunkCount, bytes }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        guard
            let bitfield = try Bitfield(
                chunkCount: container.decode(UInt32.self, forKey: .chunkCount),
                bytes: container.decode([UInt8].self, forKey: .bytes))
        else {
            throw DecodingError.dataCorruptedError(
                forKey: .bytes, in: container, debugDescription: "bitfield length does not match its chunk count")
        }
        self = bitfield
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(chunkCount, forKey: .chunkCount)
        try container.encode(bytes, forKey: .bytes)
    }
}

extension ManifestEntry: Codable {
    private enum CodingKeys: String, CodingKey { case hash, length }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let hash = try container.decode([UInt8].self, forKey: .hash)
        guard hash.count == 32 else {
            throw DecodingError.dataCorruptedError(forKey: .hash, in: container, debugDescription: "not 32 bytes")
        }
        self.init(hash: hash, length: try container.decode(UInt32.self, forKey: .length))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(hash, forKey: .hash)
        try container.encode(length, forKey: .length)
    }
}

extension PeerAddress: Codable {
    private enum CodingKeys: String, CodingKey { case ip, port }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        guard
            let address = try PeerAddress(
                ip: container.decode([UInt8].self, forKey: .ip), port: container.decode(UInt16.self, forKey: .port))
        else {
            throw DecodingError.dataCorruptedError(forKey: .ip, in: container, debugDescription: "not 4 or 16 bytes")
        }
        self = address
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(ip, forKey: .ip)
        try container.encode(port, forKey: .port)
    }
}
