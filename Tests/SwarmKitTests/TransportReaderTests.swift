import NIOCore
import Testing

@testable import SwarmKit

/// The transport's frames turned into wire messages, each block decrypted into a buffer of its own: every cut of
/// the plaintext into frames reads the same, messages come out only once the frame completing them verified, a
/// forged frame is a decryption failure whatever its plaintext says, and an authentic one that breaks a rule is
/// refused with that rule's reason before more than the protocol allows is buffered.
@Suite struct TransportReaderTests {
    /// Seals `plaintext` as frames of the given plaintext sizes (the rest in a last frame), with the sender's
    /// transport.
    static func frames(
        _ plaintext: ByteBuffer, cuts: [Int], sender: inout NoiseTransport
    ) throws -> [ByteBuffer] {
        var rest = plaintext
        var frames: [ByteBuffer] = []
        for size in cuts + [rest.readableBytes - cuts.reduce(0, +)] {
            let part = rest.readBytes(length: size)!
            frames.append(ByteBuffer(bytes: try sender.seal(part)))
        }
        return frames
    }

    static func read(
        _ frames: [ByteBuffer], receiver: inout NoiseTransport
    ) throws -> [[WireMessage]] {
        var reader = TransportReader(allocator: ByteBufferAllocator())
        return try frames.map { try reader.read(frame: $0, transport: &receiver) }
    }

    @Test(arguments: NoiseCipher.allCases)
    func everyCutIntoTwoFramesReadsTheSame(_ cipher: NoiseCipher) throws {
        let stream = WireSamples.stream
        #expect(stream.readableBytes <= NoiseTransport.maxPlaintextLength)
        for cut in 0...stream.readableBytes {
            var (sender, receiver) = try NoiseTransport.makeInMemoryPair(cipher: cipher)
            let read = try Self.read(try Self.frames(stream, cuts: [cut], sender: &sender), receiver: &receiver)
            #expect(read.flatMap { $0 } == WireSamples.all, "cut at \(cut)")
        }
    }

    /// Full-size blocks across 64 KiB frames, as a seeder sends them: each piece comes out with the frame that
    /// completes it, with its bytes, in a buffer holding that block only.
    @Test(arguments: NoiseCipher.allCases)
    func blocksSpanningFramesComeOutWhole(_ cipher: NoiseCipher) throws {
        let pieces = (0..<5).map { index in
            WireMessage.piece(
                Piece(
                    chunk: UInt32(index), offset: UInt32(index) * 131_072,
                    data: ByteBuffer(bytes: (0..<131_072).map { UInt8(truncatingIfNeeded: $0 * 7 + index) })))
        }
        var stream = ByteBuffer()
        for piece in pieces {
            var encoded = piece.encoded()
            stream.writeBuffer(&encoded)
        }
        let full = NoiseTransport.maxPlaintextLength
        let cuts = Array(repeating: full, count: stream.readableBytes / full)
        var (sender, receiver) = try NoiseTransport.makeInMemoryPair(cipher: cipher)
        let frames = try Self.frames(stream, cuts: cuts, sender: &sender)
        let read = try Self.read(frames, receiver: &receiver)
        #expect(read.flatMap { $0 } == pieces)
        // The first piece (14 + 131,072 bytes) ends in the third frame; nothing comes out before it.
        #expect(read[0].isEmpty && read[1].isEmpty)
        #expect(read[2].first == pieces[0])
        for case .piece(let piece) in read.flatMap({ $0 }) {
            #expect(piece.data.readerIndex == 0 && piece.data.readableBytes == 131_072)
        }
    }

    /// One byte of ciphertext flipped, in the length, the type or the tag: the frame does not verify, and that is
    /// what is reported, not the oversized length or unknown type its garbage plaintext shows.
    @Test(arguments: NoiseCipher.allCases)
    func aForgedFrameIsADecryptionFailure(_ cipher: NoiseCipher) throws {
        let message = WireMessage.request(BlockRequest(chunk: 3, offset: 0, length: 4096)).encoded()
        for position in [0, 1, 5, 6, message.readableBytes + 3] {
            var (sender, receiver) = try NoiseTransport.makeInMemoryPair(cipher: cipher)
            var frame = try Self.frames(message, cuts: [], sender: &sender)[0]
            let byte = frame.getInteger(at: position, as: UInt8.self)!
            frame.setInteger(byte ^ 0x80, at: position)
            #expect(throws: NoiseError.decryptionFailed) { try Self.read([frame], receiver: &receiver) }
        }
    }

    /// Authentic frames that break a message rule: refused with the rule's reason.
    @Test func anAuthenticViolationIsRefusedWithItsReason() throws {
        func reason(_ bytes: [UInt8]) throws -> GoodbyeReason? {
            var (sender, receiver) = try NoiseTransport.makeInMemoryPair(cipher: .aesGCM)
            let frames = try Self.frames(ByteBuffer(bytes: bytes), cuts: [], sender: &sender)
            do {
                _ = try Self.read(frames, receiver: &receiver)
                return nil
            } catch let error as WireProtocolError {
                return error.reason
            }
        }
        // A length over the limit, refused from its four bytes alone (the body is never waited for).
        #expect(try reason([0x7F, 0xFF, 0xFF, 0xFF]) == .oversized)
        #expect(try reason([0x7F, 0xFF, 0xFF, 0xFF, 1, 0x09]) == .oversized)
        #expect(try reason([0, 0, 0, 2, 2, 0x03]) == .unsupportedVersion)
        #expect(try reason([0, 0, 0, 1, 1, 0x03]) == .malformedMessage)
        #expect(try reason([0, 0, 0, 2, 1, 0x7F]) == .unknownMessage)
        // A piece with an empty block, and one with a block over 128 KiB: refused before a buffer is made for it.
        #expect(try reason([0, 0, 0, 10, 1, 0x0A, 0, 0, 0, 1, 0, 0, 0, 0]) == .malformedMessage)
        #expect(try reason([0, 2, 0, 11, 1, 0x0A, 0, 0, 0, 1, 0, 0, 0, 0]) == .malformedMessage)
        // The rule is checked however the frame goes on: what follows the violation in the frame is not read.
        #expect(try reason([0, 0, 0, 2, 1, 0x03] + [0, 0, 0, 1, 1, 0x03]) == .malformedMessage)
        #expect(try reason([0, 0, 0, 2, 1, 0x03]) == nil)
    }

    /// A message cut in the middle of its prefix or of its block, over three frames, still reads as itself, and the
    /// last frame's messages keep their order.
    @Test func messagesCutAnywhereAcrossFramesKeepTheirOrder() throws {
        let messages: [WireMessage] = [
            .have(chunk: 9),
            .piece(Piece(chunk: 2, offset: 0, data: ByteBuffer(bytes: [UInt8](repeating: 0x5A, count: 1000)))),
            .unchoke,
        ]
        var stream = ByteBuffer()
        for message in messages {
            var encoded = message.encoded()
            stream.writeBuffer(&encoded)
        }
        for first in [1, 3, 7, 10, 13, 20, 500] {
            var (sender, receiver) = try NoiseTransport.makeInMemoryPair(cipher: .aesGCM)
            let frames = try Self.frames(stream, cuts: [first, 2], sender: &sender)
            let read = try Self.read(frames, receiver: &receiver)
            #expect(read.flatMap { $0 } == messages, "cut at \(first)")
        }
    }
}
