public import NIOCore

/// Splits the decrypted byte stream into wire messages (docs/protocol.md §5.1):
///
/// > `u32 length | u8 version | u8 type | body`, where `length` counts version, type and body and lies
/// > in 2 ... `WireLimits.maxMessageLength`. Version 1 is the only one; any other closes the connection.
///
/// The length is checked before anything is buffered for the body, so a peer cannot make us hold more
/// than `maximumLength` bytes for one message. Short input returns nil and leaves the reader index.
public struct MessageParser: Sendable {
    public let maximumLength: Int

    public init(maximumLength: Int = WireLimits.maxMessageLength) {
        precondition(maximumLength >= 2)
        self.maximumLength = maximumLength
    }

    /// Reads one message out of `buffer`, or returns nil when more bytes are needed.
    public func parse(_ buffer: inout ByteBuffer) throws(WireProtocolError) -> WireMessage? {
        let start = buffer.readerIndex
        guard let length = buffer.getInteger(at: start, as: UInt32.self) else { return nil }
        try check(length: length)
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        guard let version = buffer.getInteger(at: start + 4, as: UInt8.self),
            let typeCode = buffer.getInteger(at: start + 5, as: UInt8.self),
            let body = buffer.getSlice(at: start + 6, length: Int(length) - 2)
        else { preconditionFailure("bytes checked above") }
        try Self.check(version: version)
        let message = try WireMessage.decode(typeCode: typeCode, body: body)
        buffer.moveReaderIndex(forwardBy: 4 + Int(length))
        return message
    }

    /// A message's length (its first four bytes), checked before anything is buffered for its body: 2 ...
    /// `maximumLength`.
    func check(length: UInt32) throws(WireProtocolError) {
        guard length <= UInt32(maximumLength) else {
            throw WireProtocolError(.oversized, "message length \(length) over \(maximumLength)")
        }
        guard length >= 2 else { throw WireProtocolError(.malformedMessage, "message length \(length) under 2") }
    }

    /// A message's format version: only `SwarmKit.protocolVersion`.
    static func check(version: UInt8) throws(WireProtocolError) {
        guard version == SwarmKit.protocolVersion else {
            throw WireProtocolError(.unsupportedVersion, "message version \(version)")
        }
    }
}

/// Encodes outbound `WireMessage`s. A `piece` goes out as two writes, its header and then its block
/// bytes unchanged, so blocks are not copied here.
public final class MessageEncoder: ChannelOutboundHandler, Sendable {
    public typealias OutboundIn = WireMessage
    public typealias OutboundOut = ByteBuffer

    public init() {}

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let message = Self.unwrapOutboundIn(data)
        var header = context.channel.allocator.buffer(capacity: message.kind == .piece ? 14 : 6 + message.bodyLength)
        message.writeHeaderAndBody(into: &header, includingPieceData: false)
        if case .piece(let piece) = message {
            context.write(Self.wrapOutboundOut(header), promise: nil)
            context.write(Self.wrapOutboundOut(piece.data), promise: promise)
        } else {
            context.write(Self.wrapOutboundOut(header), promise: promise)
        }
    }
}
