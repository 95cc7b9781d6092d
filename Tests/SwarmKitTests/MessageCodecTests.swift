import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

@testable import SwarmKit

@Suite struct MessageCodecTests {
    @Test func everyMessageRoundTrips() throws {
        for message in WireSamples.all {
            var encoded = message.encoded()
            #expect(encoded.readableBytes == 6 + message.bodyLength)
            let decoded = try MessageParser().parse(&encoded)
            #expect(decoded == message)
            #expect(encoded.readableBytes == 0)
        }
    }

    @Test func oversizedLengthIsRefusedFromItsFourBytes() {
        var buffer = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(throws: WireProtocolError.self) { try MessageParser().parse(&buffer) }
        var justOver = ByteBuffer()
        justOver.writeInteger(UInt32(WireLimits.maxMessageLength + 1))
        do {
            _ = try MessageParser().parse(&justOver)
            Issue.record("accepted an oversized length")
        } catch {
            #expect(error.reason == .oversized)
        }
    }

    @Test func shortInputLeavesTheReaderIndex() throws {
        var encoded = WireMessage.request(BlockRequest(chunk: 1, offset: 2, length: 3)).encoded()
        var partial = encoded.readSlice(length: 10)!
        #expect(try MessageParser().parse(&partial) == nil)
        #expect(partial.readerIndex == 0 && partial.readableBytes == 10)
    }

    @Test func badMessagesAreRefusedWithTheirReason() {
        func reason(_ bytes: [UInt8]) -> GoodbyeReason? {
            var buffer = ByteBuffer(bytes: bytes)
            do { _ = try MessageParser().parse(&buffer); return nil } catch { return error.reason }
        }
        #expect(reason([0, 0, 0, 2, 1, 0x7F]) == .unknownMessage)
        #expect(reason([0, 0, 0, 2, 2, 0x03]) == .unsupportedVersion)
        #expect(reason([0, 0, 0, 1, 1]) == .malformedMessage)  // length under 2
        #expect(reason([0, 0, 0, 3, 1, 0x03, 0]) == .malformedMessage)  // choke with a body
        // A request for 0 bytes.
        #expect(reason([0, 0, 0, 14, 1, 0x09, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]) == .malformedMessage)
        #expect(reason([0, 0, 0, 7, 1, 0x07, 0, 0, 0, 1, 0x7F]) == .malformedMessage)  // bitfield padding bit set
        #expect(reason([0, 0, 0, 10, 1, 0x0A, 0, 0, 0, 1, 0, 0, 0, 0]) == .malformedMessage)  // empty piece
        #expect(reason([0, 0, 0, 4, 1, 0x0E, 1, 5]) == .malformedMessage)  // address family 5
    }
}

@Suite struct FrameCodecTests {
    static func frames(_ sizes: [Int]) -> (ByteBuffer, [ByteBuffer]) {
        var stream = ByteBuffer()
        var bodies: [ByteBuffer] = []
        for (index, size) in sizes.enumerated() {
            let body = ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0 &+ index) })
            stream.writeInteger(UInt16(size))
            stream.writeImmutableBuffer(body)
            bodies.append(body)
        }
        return (stream, bodies)
    }

    @Test func decoderVerifier() throws {
        let pairs = [16, 17, 300, 4000].map { size in
            let (stream, bodies) = Self.frames([size])
            return (stream, bodies)
        }
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { FrameDecoder() }
    }

    @Test func splitAtEveryByteBoundaryDecodesTheSame() throws {
        let (stream, bodies) = Self.frames([16, 40, 16, 200, 33])
        for split in 0...stream.readableBytes {
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder()))
            try channel.writeInbound(stream.getSlice(at: 0, length: split)!)
            try channel.writeInbound(stream.getSlice(at: split, length: stream.readableBytes - split)!)
            var decoded: [ByteBuffer] = []
            while let frame = try channel.readInbound(as: ByteBuffer.self) { decoded.append(frame) }
            #expect(decoded == bodies, "split at \(split)")
            _ = try channel.finish()
        }
    }

    @Test func lengthOutsideTheLimitsIsRefusedFromTwoBytes() {
        var oversized = ByteBuffer(bytes: [0xFF, 0xFF])
        do {
            _ = try FrameParser(maximumLength: 1024).parse(&oversized)
            Issue.record("accepted an oversized frame")
        } catch {
            #expect(error.reason == .oversized)
        }
        var tiny = ByteBuffer(bytes: [0x00, 0x05, 1, 2, 3, 4, 5])
        #expect(throws: WireProtocolError.self) { try FrameParser().parse(&tiny) }
    }
}
