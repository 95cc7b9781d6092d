internal import NIOCore

/// Turns the transport's frames into wire messages (docs/protocol.md §4-5), decrypting each `piece`'s block
/// straight into a buffer of its own.
///
/// The plaintext of a frame is not made whole first: the reader decrypts a message's first bytes (length, version,
/// type) into `head`, and from there either the rest of the message into `head` too, to be parsed by
/// `MessageParser`, or, for a `piece`, its chunk and offset and then the block into a buffer of exactly the block's
/// length, across as many frames as it spans. So a block is written once, by the cipher, and is not copied again
/// on the receiving side before the chunk is hashed: no frame-sized plaintext buffer, no cumulation buffer that
/// pieces are sliced from (a slice kept until its chunk was complete pinned that buffer, and the next read copied
/// it), no copy into a chunk buffer.
///
/// Messages are handed out only after the frame that completes them has verified. The lengths and types that
/// route the bytes are read before the frame's tag is checked; they are bounded like any message's (at most
/// `WireLimits.maxMessageLength` buffered, a block at most `WireLimits.maxBlockLength`), and a frame whose header
/// bytes break a rule is still decrypted to its end so that a forged frame is reported as `decryptionFailed`, not
/// as the rule its garbage happened to break.
struct TransportReader {
    private let parser = MessageParser()
    private let allocator: ByteBufferAllocator
    /// The first bytes of the message being read, and the whole message unless it is a `piece`.
    private var head: ByteBuffer
    /// The `piece` whose block is being read: its header fields, and the block's bytes so far.
    private var block: (chunk: UInt32, offset: UInt32, data: ByteBuffer, remaining: Int)?

    /// Length, version and type: what every message starts with, and what decides where the rest goes.
    private static let prefixLength = 6
    /// A `piece`'s header: the prefix, then chunk and offset.
    private static let pieceHeaderLength = 14

    init(allocator: ByteBufferAllocator) {
        self.allocator = allocator
        head = allocator.buffer(capacity: 256)
    }

    /// Decrypts one frame and returns the messages it completes, in order.
    ///
    /// - Throws: `NoiseError.decryptionFailed` when the frame does not verify (whatever its plaintext looked like);
    ///   `WireProtocolError` for an authentic frame that breaks the message rules (`MessageParser`'s).
    mutating func read(frame: ByteBuffer, transport: inout NoiseTransport) throws -> [WireMessage] {
        let outcome = try frame.withUnsafeReadableBytes { ciphertext in
            try transport.open(inParts: ciphertext) { opener in consume(&opener) }
        }
        return try outcome.get()
    }

    private mutating func consume(_ opener: inout FrameOpener) -> Result<[WireMessage], WireProtocolError> {
        var messages: [WireMessage] = []
        do {
            while opener.remaining > 0 {
                if block != nil {
                    let count = min(block!.remaining, opener.remaining)
                    block!.data.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { out in
                        opener.next(into: UnsafeMutableRawBufferPointer(rebasing: out[0..<count]))
                        return count
                    }
                    block!.remaining -= count
                    if block!.remaining == 0, let done = block.take() {
                        messages.append(.piece(Piece(chunk: done.chunk, offset: done.offset, data: done.data)))
                    }
                    continue
                }
                let count = min(try headBytesWanted(), opener.remaining)
                head.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { out in
                    opener.next(into: UnsafeMutableRawBufferPointer(rebasing: out[0..<count]))
                    return count
                }
                if let message = try headComplete() { messages.append(message) }
            }
            return .success(messages)
        } catch {
            // Decrypt the rest of the frame anyway, so that its tag decides between a forgery and a real violation.
            let rest = opener.remaining
            if rest > 0 {
                let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: rest, alignment: 16)
                opener.next(into: scratch)
                scratch.deallocate()
            }
            return .failure(error)
        }
    }

    /// How many more bytes `head` needs before its message can be routed or parsed (0: it can). The rules of what is
    /// there are checked as soon as it is there (`MessageParser`'s for the length and version, a `piece`'s block
    /// length), so nothing beyond what the protocol allows is ever buffered.
    private func headBytesWanted() throws(WireProtocolError) -> Int {
        let have = head.readableBytes
        let start = head.readerIndex
        guard let length = head.getInteger(at: start, as: UInt32.self) else { return 4 - have }
        try parser.check(length: length)
        guard let version = head.getInteger(at: start + 4, as: UInt8.self),
            let kind = head.getInteger(at: start + 5, as: UInt8.self)
        else { return Self.prefixLength - have }
        try MessageParser.check(version: version)
        guard kind == WireMessage.Kind.piece.rawValue else { return 4 + Int(length) - have }
        try WireMessage.checkBlockLength(Self.blockLength(messageLength: length))
        return Self.pieceHeaderLength - have
    }

    /// A `piece`'s block length from its message length (which counts version, type, chunk and offset too).
    private static func blockLength(messageLength: UInt32) -> Int {
        Int(messageLength) - (pieceHeaderLength - 4)
    }

    /// After bytes went into `head`: a whole message parsed, or a `piece` header turned into the block to read.
    private mutating func headComplete() throws(WireProtocolError) -> WireMessage? {
        guard try headBytesWanted() == 0 else { return nil }
        let start = head.readerIndex
        if head.getInteger(at: start + 5, as: UInt8.self) == WireMessage.Kind.piece.rawValue {
            guard let length = head.getInteger(at: start, as: UInt32.self),
                let chunk = head.getInteger(at: start + 6, as: UInt32.self),
                let offset = head.getInteger(at: start + 10, as: UInt32.self)
            else { preconditionFailure("the piece header is there") }
            let count = Self.blockLength(messageLength: length)
            block = (chunk, offset, allocator.buffer(capacity: count), count)
            head.clear()
            return nil
        }
        guard let message = try parser.parse(&head) else { preconditionFailure("the whole message is there") }
        // A large message (a manifest page, a bitfield) leaves a large buffer behind: not kept for the session.
        if head.capacity > 4096 { head = allocator.buffer(capacity: 256) } else { head.clear() }
        return message
    }
}
