/// `ChunkSet` and `Manifest` as `Codable` values, for recordings of the swarm engine's events (a set as its count
/// and members; a manifest as its parameters and chunks, checked again when decoded).
extension ChunkSet: Codable {
    private enum CodingKeys: String, CodingKey { case count, members }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let count = try container.decode(Int.self, forKey: .count)
        guard count >= 0 else {
            throw DecodingError.dataCorruptedError(forKey: .count, in: container, debugDescription: "negative count")
        }
        let members = try container.decode([Int].self, forKey: .members)
        self.init(count: count, indexes: members)
        guard cardinality == members.count else {
            throw DecodingError.dataCorruptedError(
                forKey: .members, in: container, debugDescription: "members out of range or repeated")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(count, forKey: .count)
        try container.encode(Array(self), forKey: .members)
    }
}

extension Manifest: Codable {
    private enum CodingKeys: String, CodingKey { case parameters, chunks }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        do {
            try self.init(
                parameters: container.decode(ChunkingParameters.self, forKey: .parameters),
                chunks: container.decode([ChunkRef].self, forKey: .chunks))
        } catch let error as ChunkStoreError {
            throw DecodingError.dataCorruptedError(
                forKey: .chunks, in: container, debugDescription: "\(error)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(parameters, forKey: .parameters)
        try container.encode(chunks, forKey: .chunks)
    }
}
