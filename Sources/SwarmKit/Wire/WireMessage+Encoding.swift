public import NIOCore

extension WireMessage {
    /// The size of the body on the wire (without the 4-byte length, version and type bytes).
    var bodyLength: Int {
        switch self {
        case .keepAlive, .choke, .unchoke, .interested, .notInterested: return 0
        case .hello: return 2 + 8 + 32 + 2
        case .goodbye: return 2
        case .bitfield(let bitfield): return 4 + bitfield.bytes.count
        case .have, .manifestRequest: return 4
        case .request, .cancel: return 12
        case .piece(let piece): return 8 + piece.data.readableBytes
        case .manifestPage(let page): return 4 + 4 + 8 + 4 + 2 + page.entries.count * 36
        case .peerExchange(let addresses): return 1 + addresses.reduce(0) { $0 + 1 + $1.ip.count + 2 }
        case .attach: return 2 + 32 + 8 + 32
        case .attached: return 2 + 8 + 32
        case .detach: return 4
        case .channel: return 2
        // The message and the `channel` message that may go before it.
        case .onChannel(_, let message): return message.bodyLength + 6 + 2
        }
    }

    /// Checks the limits of docs/protocol.md §5 for a message this side is about to send. Sending a
    /// message over a limit is a programmer error.
    func preconditionWithinLimits() {
        precondition(2 + bodyLength <= WireLimits.maxMessageLength, "message over maxMessageLength")
        switch self {
        case .hello(let hello): precondition(hello.deviceKey.count == 32, "device key is 32 bytes")
        case .request(let block), .cancel(let block):
            precondition(block.length >= 1 && block.length <= WireLimits.maxBlockLength, "block length out of range")
        case .piece(let piece):
            precondition(
                piece.data.readableBytes >= 1 && piece.data.readableBytes <= WireLimits.maxBlockLength,
                "piece length out of range")
        case .manifestPage(let page):
            precondition(page.entries.count <= WireLimits.maxManifestPageEntries, "too many manifest entries")
        case .peerExchange(let addresses):
            precondition(addresses.count <= WireLimits.maxPeerExchangeAddresses, "too many addresses")
        case .bitfield(let bitfield):
            precondition(bitfield.chunkCount <= WireLimits.maxBitfieldChunks, "bitfield too large")
        case .attach(let attach):
            precondition(attach.swarmID.count == 32 && attach.proof.count == 32, "attach fields are 32 bytes")
            precondition(attach.channel >= 1 && attach.channel < WireLimits.maxChannels, "channel out of range")
        case .attached(let attached):
            precondition(attached.proof.count == 32, "attached proof is 32 bytes")
            precondition(attached.channel >= 1 && attached.channel < WireLimits.maxChannels, "channel out of range")
        case .detach(let channel, _):
            precondition(channel < WireLimits.maxChannels, "channel out of range")
        case .channel(let channel):
            precondition(channel < WireLimits.maxChannels, "channel out of range")
        case .onChannel:
            preconditionFailure("a message on a channel is written by PeerProtocolHandler, not encoded")
        default: break
        }
    }

    /// Writes the length prefix, version, type and body; for `piece` only the header (without the block
    /// bytes, which the caller writes next so they are not copied here).
    public func writeHeaderAndBody(into buffer: inout ByteBuffer, includingPieceData: Bool = true) {
        preconditionWithinLimits()
        buffer.writeInteger(UInt32(2 + bodyLength))
        buffer.writeInteger(SwarmKit.protocolVersion)
        buffer.writeInteger(kind.rawValue)
        switch self {
        case .keepAlive, .choke, .unchoke, .interested, .notInterested:
            break
        case .hello(let hello):
            buffer.writeInteger(hello.protocolVersion)
            buffer.writeInteger(hello.capabilities)
            buffer.writeBytes(hello.deviceKey)
            buffer.writeInteger(hello.listenPort)
        case .goodbye(let reason):
            buffer.writeInteger(reason.rawValue)
        case .bitfield(let bitfield):
            buffer.writeInteger(bitfield.chunkCount)
            buffer.writeBytes(bitfield.bytes)
        case .have(let chunk):
            buffer.writeInteger(chunk)
        case .manifestRequest(let page):
            buffer.writeInteger(page)
        case .request(let block), .cancel(let block):
            buffer.writeInteger(block.chunk)
            buffer.writeInteger(block.offset)
            buffer.writeInteger(block.length)
        case .piece(let piece):
            buffer.writeInteger(piece.chunk)
            buffer.writeInteger(piece.offset)
            if includingPieceData { buffer.writeImmutableBuffer(piece.data) }
        case .manifestPage(let page):
            buffer.writeInteger(page.page)
            buffer.writeInteger(page.pageCount)
            buffer.writeInteger(page.fileSize)
            buffer.writeInteger(page.chunkCount)
            buffer.writeInteger(UInt16(page.entries.count))
            for entry in page.entries {
                buffer.writeBytes(entry.hash)
                buffer.writeInteger(entry.length)
            }
        case .peerExchange(let addresses):
            buffer.writeInteger(UInt8(addresses.count))
            for address in addresses {
                buffer.writeInteger(UInt8(address.ip.count == 4 ? 4 : 6))
                buffer.writeBytes(address.ip)
                buffer.writeInteger(address.port)
            }
        case .attach(let attach):
            buffer.writeInteger(attach.channel)
            buffer.writeBytes(attach.swarmID)
            buffer.writeInteger(attach.capabilities)
            buffer.writeBytes(attach.proof)
        case .attached(let attached):
            buffer.writeInteger(attached.channel)
            buffer.writeInteger(attached.capabilities)
            buffer.writeBytes(attached.proof)
        case .detach(let channel, let reason):
            buffer.writeInteger(channel)
            buffer.writeInteger(reason.rawValue)
        case .channel(let channel):
            buffer.writeInteger(channel)
        case .onChannel:
            preconditionFailure("unreachable: refused by preconditionWithinLimits")
        }
    }

    /// The whole message as bytes (tests, tools).
    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(6 + bodyLength)
        writeHeaderAndBody(into: &buffer)
        return buffer
    }
}
