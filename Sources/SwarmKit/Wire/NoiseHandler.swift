internal import Logging
internal import NIOCore

/// Fired down the pipeline when the Noise handshake has completed on this side.
struct NoiseHandshakeCompleted {
    let remoteDeviceKey: [UInt8]
    let handshakeHash: [UInt8]
    let cipher: NoiseCipher
}

/// Runs the Noise handshake and then encrypts and decrypts transport frames (docs/protocol.md §3-4).
///
/// Inbound it takes whole frames from `FrameDecoder` and passes on the wire messages they carry (`TransportReader`,
/// which decrypts each block into a buffer of its own);
/// outbound it takes plaintext bytes, packs them into frames of at most 65519 bytes (coalescing small
/// writes until a flush) and writes `u16 length | ciphertext`. A handshake that fails or does not end
/// within `handshakeTimeout` closes the channel; a transport frame that fails to decrypt is reported
/// with `fireErrorCaught` and every later frame is dropped.
final class NoiseHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = WireMessage
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case handshaking(PeerHandshake)
        case established(NoiseTransport)
        case failed
    }

    private var state: State
    private let handshakeTimeout: TimeAmount
    private var timeout: Scheduled<Void>?
    private var logger: Logger
    private var pending = ByteBuffer()
    private var reader = TransportReader(allocator: ByteBufferAllocator())
    /// Plaintext bytes accepted by `write` and bytes already sealed into frames, for write promises.
    private var queuedBytes: UInt64 = 0
    private var sealedBytes: UInt64 = 0
    private var pendingPromises: [(end: UInt64, promise: EventLoopPromise<Void>)] = []

    init(handshake: PeerHandshake, handshakeTimeout: TimeAmount, logger: Logger) {
        self.state = .handshaking(handshake)
        self.handshakeTimeout = handshakeTimeout
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard timeout == nil, case .handshaking(var handshake) = state else { return }
        if let remote = context.channel.remoteAddress { logger[metadataKey: "peer.address"] = "\(remote)" }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let limit = handshakeTimeout
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        timeout = context.eventLoop.scheduleTask(in: handshakeTimeout) {
            handler.value.fail(context: loopBound.value, error: PeerConnectionError.handshakeTimeout(limit))
        }
        guard handshake.isInitiator else { return }
        do {
            let first = try handshake.start()
            state = .handshaking(handshake)
            writeFrame(context: context, first, promise: nil)
            context.flush()
        } catch {
            fail(context: context, error: error)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var frame = Self.unwrapInboundIn(data)
        switch state {
        case .handshaking(var handshake):
            let bytes = frame.readBytes(length: frame.readableBytes) ?? []
            do {
                let action = try handshake.receive(bytes)
                switch action {
                case .send(let reply):
                    state = .handshaking(handshake)
                    writeFrame(context: context, reply, promise: nil)
                    context.flush()
                case .sendAndComplete(let reply, let result):
                    writeFrame(context: context, reply, promise: nil)
                    complete(context: context, result)
                case .complete(let result):
                    complete(context: context, result)
                }
            } catch {
                fail(context: context, error: error)
            }
        case .established(var transport):
            if dropInbound { return }
            let messages: [WireMessage]
            do {
                messages = try reader.read(frame: frame, transport: &transport)
            } catch let error as WireProtocolError {
                return transportFailed(context: context, error)
            } catch NoiseError.invalidMessageLength {
                return transportFailed(
                    context: context, WireProtocolError(.malformedMessage, "frame shorter than a tag"))
            } catch {
                return transportFailed(
                    context: context, WireProtocolError(.decryptionFailed, "transport frame did not decrypt"))
            }
            state = .established(transport)
            for message in messages {
                if dropInbound { break }
                context.fireChannelRead(Self.wrapInboundOut(message))
            }
        case .failed:
            break
        }
    }

    private func complete(context: ChannelHandlerContext, _ result: PeerHandshakeResult) {
        timeout?.cancel()
        state = .established(result.transport)
        logger.debug(
            "noise handshake complete",
            metadata: [
                "peer.fingerprint": "\(DeviceIdentity.fingerprint(of: result.remoteDeviceKey))",
                "noise.cipher": "\(result.cipher.rawValue)",
            ])
        context.fireUserInboundEventTriggered(
            NoiseHandshakeCompleted(
                remoteDeviceKey: result.remoteDeviceKey, handshakeHash: result.handshakeHash, cipher: result.cipher))
        flush(context: context)
    }

    private func transportFailed(context: ChannelHandlerContext, _ error: WireProtocolError) {
        // Stop decrypting; keep the send side so a goodbye can still go out.
        dropInbound = true
        context.fireErrorCaught(error)
    }

    private var dropInbound = false

    private func fail(context: ChannelHandlerContext, error: any Error) {
        guard case .handshaking = state else { return }
        state = .failed
        timeout?.cancel()
        logger.info("noise handshake failed", metadata: ["error": "\(error)"])
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeout?.cancel()
        if case .handshaking = state {
            state = .failed
            context.fireErrorCaught(PeerConnectionError.closedDuringHandshake)
        }
        let error = ChannelError.ioOnClosedChannel
        for entry in pendingPromises { entry.promise.fail(error) }
        pendingPromises.removeAll()
        context.fireChannelInactive()
    }

    // MARK: outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .established = state else {
            promise?.fail(PeerConnectionError.handshakeNotComplete)
            return
        }
        var data = Self.unwrapOutboundIn(data)
        queuedBytes += UInt64(data.readableBytes)
        if let promise { pendingPromises.append((queuedBytes, promise)) }
        let maxPlain = NoiseTransport.maxPlaintextLength
        if pending.readableBytes > 0 {
            let take = min(maxPlain - pending.readableBytes, data.readableBytes)
            let head = data.readSlice(length: take)!
            if pending.readableBytes + take == maxPlain, case .established(let transport) = state,
                transport.sealsInParts
            {
                // A full frame: `pending` (a piece's header, say) and the caller's bytes sealed where they are, not
                // copied together first (that copy was half of every block a seeder sent).
                seal(context: context, from: &pending, then: head)
                pending.clear()
            } else {
                var head = head
                pending.writeBuffer(&head)
                if pending.readableBytes == maxPlain { sealPending(context: context) }
            }
        }
        // Full frames straight from the caller's buffer, without copying them into `pending`.
        while data.readableBytes >= maxPlain, case .established = state {
            var slice = data.readSlice(length: maxPlain)!
            seal(context: context, from: &slice)
        }
        if data.readableBytes > 0 { pending.writeBuffer(&data) }
    }

    func flush(context: ChannelHandlerContext) {
        if pending.readableBytes > 0 { sealPending(context: context) }
        context.flush()
    }

    private func sealPending(context: ChannelHandlerContext) {
        seal(context: context, from: &pending)
        pending.clear()
    }

    /// Seals all readable bytes of `plaintext`, then those of `more` (at most 65519 together), into one frame and
    /// writes it.
    private func seal(context: ChannelHandlerContext, from plaintext: inout ByteBuffer, then more: ByteBuffer? = nil) {
        guard case .established(var transport) = state else { return }
        let first = plaintext.readableBytes
        let count = first + (more?.readableBytes ?? 0)
        var frame = context.channel.allocator.buffer(capacity: 2 + count + NoiseCipher.tagLength)
        frame.writeInteger(UInt16(count + NoiseCipher.tagLength))
        do {
            _ = try plaintext.withUnsafeReadableBytes { input in
                try frame.writeWithUnsafeMutableBytes(minimumWritableBytes: count + NoiseCipher.tagLength) { out in
                    let sealed = UnsafeMutableRawBufferPointer(rebasing: out[0..<(count + NoiseCipher.tagLength)])
                    if let more {
                        try more.withUnsafeReadableBytes { second in
                            try transport.seal(input, then: second, into: sealed)
                        }
                    } else {
                        try transport.seal(input, into: sealed)
                    }
                    return count + NoiseCipher.tagLength
                }
            }
        } catch {
            logger.warning("noise transport cannot encrypt", metadata: ["error": "\(error)"])
            state = .failed
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        plaintext.moveReaderIndex(forwardBy: first)
        state = .established(transport)
        sealedBytes += UInt64(count)
        var done: EventLoopPromise<Void>?
        while let first = pendingPromises.first, first.end <= sealedBytes {
            pendingPromises.removeFirst()
            if let done { done.futureResult.cascade(to: first.promise) } else { done = first.promise }
        }
        context.write(Self.wrapOutboundOut(frame), promise: done)
    }

    private func writeFrame(context: ChannelHandlerContext, _ message: [UInt8], promise: EventLoopPromise<Void>?) {
        var frame = context.channel.allocator.buffer(capacity: 2 + message.count)
        frame.writeInteger(UInt16(message.count))
        frame.writeBytes(message)
        context.write(Self.wrapOutboundOut(frame), promise: promise)
    }
}
