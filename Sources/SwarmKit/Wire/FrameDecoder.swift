public import NIOCore

/// Splits the TCP byte stream into Noise messages (docs/protocol.md §4):
///
/// > Every Noise message, handshake or transport, is sent as `u16 length (big-endian) | length bytes`.
/// > A length below `minimumLength` or above `maximumLength` closes the connection.
///
/// The parser never buffers more than one frame: the length is checked as soon as its two bytes are
/// there, before waiting for the body. Short input returns nil and leaves the reader index unchanged.
public struct FrameParser: Sendable {
    /// The largest frame accepted; at most 65535 (Noise's limit, and what a u16 can say).
    public let maximumLength: Int
    /// The smallest frame accepted (16: every Noise message of harp carries at least a tag).
    public let minimumLength: Int

    public init(maximumLength: Int = NoiseHandshakeState.maxMessageLength, minimumLength: Int = NoiseCipher.tagLength) {
        precondition(maximumLength <= 65535 && minimumLength >= 0 && minimumLength <= maximumLength)
        self.maximumLength = maximumLength
        self.minimumLength = minimumLength
    }

    /// Reads one frame body out of `buffer`, or returns nil when more bytes are needed.
    public func parse(_ buffer: inout ByteBuffer) throws(WireProtocolError) -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) else { return nil }
        guard Int(length) <= maximumLength else {
            throw WireProtocolError(.oversized, "frame length \(length) over \(maximumLength)")
        }
        guard Int(length) >= minimumLength else {
            throw WireProtocolError(.malformedMessage, "frame length \(length) under \(minimumLength)")
        }
        guard buffer.readableBytes >= 2 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 2)
        return buffer.readSlice(length: Int(length))
    }
}

/// The `ByteToMessageDecoder` around `FrameParser`: bytes in, one `ByteBuffer` per Noise message out.
public struct FrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer
    private let parser: FrameParser

    public init(parser: FrameParser = FrameParser()) {
        self.parser = parser
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try parser.parse(&buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws -> DecodingState {
        // A partial frame at EOF is simply dropped: the connection is gone anyway.
        try decode(context: context, buffer: &buffer)
    }
}
