public import NIOCore

extension WireMessage {
    /// Decodes one message body of type `typeCode`; `body` must hold exactly the body bytes.
    ///
    /// - Throws: `WireProtocolError` (`unknownMessage` for an unknown type, `malformedMessage` for a
    ///   body of the wrong size or with an out-of-range field).
    public static func decode(typeCode: UInt8, body: ByteBuffer) throws(WireProtocolError) -> WireMessage {
        guard let kind = Kind(rawValue: typeCode) else {
            throw WireProtocolError(.unknownMessage, "type 0x\(String(typeCode, radix: 16))")
        }
        var body = body
        let message = try decode(kind: kind, body: &body)
        guard body.readableBytes == 0 else { throw .malformed(kind, "\(body.readableBytes) trailing bytes") }
        return message
    }

    private static func decode(kind: Kind, body: inout ByteBuffer) throws(WireProtocolError) -> WireMessage {
        switch kind {
        case .keepAlive: return .keepAlive
        case .choke: return .choke
        case .unchoke: return .unchoke
        case .interested: return .interested
        case .notInterested: return .notInterested
        case .hello:
            let version: UInt16 = try read(&body, kind)
            let capabilities: UInt64 = try read(&body, kind)
            let key = try readBytes(&body, 32, kind)
            let port: UInt16 = try read(&body, kind)
            return .hello(Hello(protocolVersion: version, capabilities: capabilities, deviceKey: key, listenPort: port))
        case .goodbye:
            return .goodbye(GoodbyeReason(rawValue: try read(&body, kind)))
        case .bitfield:
            let count: UInt32 = try read(&body, kind)
            guard count <= WireLimits.maxBitfieldChunks else {
                throw .malformed(kind, "chunk count \(count) too large")
            }
            let bytes = try readBytes(&body, Int((UInt64(count) + 7) / 8), kind)
            guard let bitfield = Bitfield(chunkCount: count, bytes: bytes) else {
                throw .malformed(kind, "padding bits set")
            }
            return .bitfield(bitfield)
        case .have:
            return .have(chunk: try read(&body, kind))
        case .manifestRequest:
            return .manifestRequest(page: try read(&body, kind))
        case .request, .cancel:
            let block = BlockRequest(
                chunk: try read(&body, kind), offset: try read(&body, kind), length: try read(&body, kind))
            guard block.length >= 1, block.length <= WireLimits.maxBlockLength else {
                throw .malformed(kind, "block length \(block.length) out of range")
            }
            return kind == .request ? .request(block) : .cancel(block)
        case .piece:
            let chunk: UInt32 = try read(&body, kind)
            let offset: UInt32 = try read(&body, kind)
            try checkBlockLength(body.readableBytes)
            guard let data = body.readSlice(length: body.readableBytes) else { preconditionFailure("bytes are there") }
            return .piece(Piece(chunk: chunk, offset: offset, data: data))
        case .manifestPage:
            return .manifestPage(try decodeManifestPage(&body))
        case .peerExchange:
            let count: UInt8 = try read(&body, kind)
            guard count <= WireLimits.maxPeerExchangeAddresses else { throw .malformed(kind, "\(count) addresses") }
            var addresses: [PeerAddress] = []
            for _ in 0..<count {
                let family: UInt8 = try read(&body, kind)
                guard family == 4 || family == 6 else { throw .malformed(kind, "address family \(family)") }
                let ip = try readBytes(&body, family == 4 ? 4 : 16, kind)
                let port: UInt16 = try read(&body, kind)
                guard let address = PeerAddress(ip: ip, port: port) else { throw .malformed(kind, "address") }
                addresses.append(address)
            }
            return .peerExchange(addresses)
        case .attach:
            let channel = try readChannel(&body, kind)
            let swarmID = try readBytes(&body, 32, kind)
            let capabilities: UInt64 = try read(&body, kind)
            let proof = try readBytes(&body, 32, kind)
            return .attach(Attach(channel: channel, swarmID: swarmID, capabilities: capabilities, proof: proof))
        case .attached:
            let channel = try readChannel(&body, kind)
            let capabilities: UInt64 = try read(&body, kind)
            return .attached(
                Attached(channel: channel, capabilities: capabilities, proof: try readBytes(&body, 32, kind)))
        case .detach:
            // Channel 0 too: the connection's own swarm ends, the attached ones go on.
            let channel: UInt16 = try read(&body, kind)
            guard channel < WireLimits.maxChannels else { throw .malformed(kind, "channel \(channel)") }
            return .detach(channel: channel, reason: GoodbyeReason(rawValue: try read(&body, kind)))
        case .channel:
            let channel: UInt16 = try read(&body, kind)
            guard channel < WireLimits.maxChannels else { throw .malformed(kind, "channel \(channel)") }
            return .channel(channel)
        }
    }

    /// The channel of an `attach` or `attached`: 1 ..< `WireLimits.maxChannels` (0 is never attached).
    private static func readChannel(_ body: inout ByteBuffer, _ kind: Kind) throws(WireProtocolError) -> UInt16 {
        let channel: UInt16 = try read(&body, kind)
        guard channel >= 1, channel < WireLimits.maxChannels else { throw .malformed(kind, "channel \(channel)") }
        return channel
    }

    /// A `piece`'s block: 1 ... `WireLimits.maxBlockLength` bytes.
    static func checkBlockLength(_ count: Int) throws(WireProtocolError) {
        guard count >= 1, count <= Int(WireLimits.maxBlockLength) else {
            throw .malformed(.piece, "block length \(count) out of range")
        }
    }

    private static func decodeManifestPage(_ body: inout ByteBuffer) throws(WireProtocolError) -> ManifestPage {
        let kind = Kind.manifestPage
        let page: UInt32 = try read(&body, kind)
        let pageCount: UInt32 = try read(&body, kind)
        let fileSize: UInt64 = try read(&body, kind)
        let chunkCount: UInt32 = try read(&body, kind)
        let entryCount: UInt16 = try read(&body, kind)
        guard page < pageCount else { throw .malformed(kind, "page \(page) of \(pageCount)") }
        guard Int(entryCount) <= WireLimits.maxManifestPageEntries, body.readableBytes == Int(entryCount) * 36 else {
            throw .malformed(kind, "\(entryCount) entries in \(body.readableBytes) bytes")
        }
        var entries: [ManifestEntry] = []
        entries.reserveCapacity(Int(entryCount))
        for _ in 0..<entryCount {
            entries.append(ManifestEntry(hash: try readBytes(&body, 32, kind), length: try read(&body, kind)))
        }
        return ManifestPage(
            page: page, pageCount: pageCount, fileSize: fileSize, chunkCount: chunkCount, entries: entries)
    }

    private static func read<T: FixedWidthInteger>(
        _ body: inout ByteBuffer, _ kind: Kind
    ) throws(WireProtocolError) -> T {
        guard let value = body.readInteger(as: T.self) else { throw .malformed(kind, "body too short") }
        return value
    }

    private static func readBytes(
        _ body: inout ByteBuffer, _ count: Int, _ kind: Kind
    ) throws(WireProtocolError) -> [UInt8] {
        guard let bytes = body.readBytes(length: count) else { throw .malformed(kind, "body too short") }
        return bytes
    }
}
