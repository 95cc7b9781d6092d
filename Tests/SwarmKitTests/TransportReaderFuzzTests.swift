import NIOCore

@testable import SwarmKit

#if !HARP_WIRE_FUZZ
    import Testing
#endif

/// The differential check of `TransportReader` against `MessageParser` (docs/fuzzing.md).
///
/// One input is a plaintext byte stream, a cipher, the plaintext sizes of the frames the stream is cut into and,
/// maybe, a byte to flip in one sealed frame. The stream goes through `MessageParser` as one buffer; cut into frames
/// and sealed with a fixed-key transport, it goes through a `TransportReader`, frame by frame. From the parser's run
/// the check predicts what the reader returns for each frame, and anything else is a `Mismatch`:
///
/// - each message the parser decodes comes out of the reader, equal (piece bytes included), in order, with the
///   frame that holds its last byte; nothing else comes out;
/// - when the parser refuses a message, the reader refuses it with the same reason, in the frame where it can see
///   the violation: the frames before that one return what they complete, that one throws;
/// - a frame with one flipped ciphertext or tag byte throws `NoiseError.decryptionFailed`, never a
///   `WireProtocolError` and never messages, whatever its garbage plaintext looks like; the frames before it read
///   as in the clean run.
///
/// The one legitimate difference is *when* a violation shows. Both check the length (2 ... 256 KiB) as soon as its
/// four bytes are there. `MessageParser` checks the version, the type and the body once the whole message is
/// there; `TransportReader` checks the version, and a `piece`'s block length (1 ... 128 KiB), as soon as the six
/// bytes of length, version and type are there, so as not to buffer a block it would refuse. For those two rules the
/// reader refuses in the frame holding the message's sixth byte, which may come before the frame holding its last
/// one, and refuses even when the stream ends before the message does (where the parser still waits for bytes).
/// The reasons agree, as both check the length, then the version, then the body. Only the reasons are compared, not
/// the details: a piece shorter than its chunk and offset is "body too short" for the parser, "block length -n out
/// of range" for the reader.
///
/// This file is compiled into the libFuzzer target `harp-transport-fuzz` too (bench/wire/fuzz/, through a symlink,
/// with `HARP_WIRE_FUZZ` defined so that the Swift Testing suite is left out): the fuzzer and the seeded test run the
/// same check.
enum TransportReaderDifferential {
    /// One input of the check.
    struct Input {
        var cipher: NoiseCipher
        /// The plaintext size of each frame (0 ... `NoiseTransport.maxPlaintextLength`), used in turn
        /// (`frameLengths`).
        var frameSizes: [Int]
        /// A byte to flip in one sealed frame, for the forged run; nil: clean run only.
        var forgery: Forgery?
        var plaintext: [UInt8]
    }

    /// Which frame of those the reader reads (`frame` modulo their number), which byte of its ciphertext and tag
    /// (`position` modulo its size), and the bits to flip (`mask`, not 0).
    struct Forgery {
        var frame: Int
        var position: Int
        var mask: UInt8
    }

    /// What one input did, for the checks that both outcomes occur.
    struct Outcome {
        /// Messages the reader returned in the clean run.
        var messages = 0
        /// The reason the reader refused the stream with, if it did.
        var refusal: GoodbyeReason?
        /// The refusal came from a message's first six bytes, before the parser could tell (end of stream) or in an
        /// earlier frame than the parser's.
        var refusedEarly = false
        /// Frames the clean run read.
        var frames = 0
        /// Frames that completed two messages or more, and pieces whose bytes lay in two frames or more, among those
        /// the reader returned.
        var busyFrames = 0
        var piecesAcrossFrames = 0
        /// The forged frame was refused as a decryption failure.
        var forgeryRefused = false
    }

    /// The reader did not do what the parser predicts.
    struct Mismatch: Error, CustomStringConvertible {
        let description: String
    }

    /// A sending and a receiving transport over two fixed keys, one a direction, as a handshake leaves them.
    static func transports(_ cipher: NoiseCipher) -> (sender: NoiseTransport, receiver: NoiseTransport) {
        let forward = SecureBytes(copying: (0..<32).map { UInt8($0) })
        let backward = SecureBytes(copying: (0..<32).map { UInt8(0xFF - $0) })
        func state(_ key: SecureBytes) -> NoiseCipherState { NoiseCipherState(cipher: cipher, key: key) }
        return (
            NoiseTransport(send: state(forward), receive: state(backward)),
            NoiseTransport(send: state(backward), receive: state(forward))
        )
    }

    /// The plaintext length of each frame for a stream of `total` bytes: `sizes` in turn, each capped by what is left,
    /// until the stream is used up. A size 0 makes an empty frame; after a whole round of empty frames (or with no
    /// sizes) the rest goes in full frames. An empty stream is one empty frame.
    static func frameLengths(total: Int, sizes: [Int]) -> [Int] {
        var lengths: [Int] = []
        var left = total
        var next = 0
        var emptyInARow = 0
        repeat {
            var size = NoiseTransport.maxPlaintextLength
            if !sizes.isEmpty, emptyInARow < sizes.count {
                size = sizes[next % sizes.count]
                next += 1
            }
            size = min(size, left)
            emptyInARow = size == 0 ? emptyInARow + 1 : 0
            lengths.append(size)
            left -= size
        } while left > 0
        return lengths
    }

    /// Runs one input; throws the first way the reader differs from the prediction.
    static func check(_ input: Input) throws(Mismatch) -> Outcome {
        let lengths = frameLengths(total: input.plaintext.count, sizes: input.frameSizes)
        let prediction = try predict(input.plaintext, lengths: lengths)
        var (sender, receiver) = transports(input.cipher)
        let frames = seal(input.plaintext, lengths: lengths, with: &sender)
        let read = prediction.refusal.map { $0.frame + 1 } ?? frames.count
        var outcome = Outcome(frames: read)

        var reader = TransportReader(allocator: ByteBufferAllocator())
        for index in 0..<read {
            let refusal = prediction.refusal?.frame == index ? prediction.refusal : nil
            do {
                let messages = try reader.read(frame: frames[index], transport: &receiver)
                if let refusal {
                    throw Mismatch(description: "\(input.cipher) frame \(index): \(kinds(messages)), not \(refusal)")
                }
                guard messages == prediction.messages[index] else {
                    throw Mismatch(
                        description: "\(input.cipher) frame \(index): \(kinds(messages)), not "
                            + kinds(prediction.messages[index]))
                }
                outcome.messages += messages.count
                outcome.piecesAcrossFrames += prediction.piecesAcrossFrames[index]
                if messages.count > 1 { outcome.busyFrames += 1 }
            } catch let error as WireProtocolError where refusal?.reason == error.reason {
                outcome.refusal = error.reason
                outcome.refusedEarly = refusal?.early ?? false
            } catch let error as Mismatch {
                throw error
            } catch {
                let expected = refusal.map { "\($0)" } ?? kinds(prediction.messages[index])
                throw Mismatch(description: "\(input.cipher) frame \(index): threw \(error), not \(expected)")
            }
        }

        guard let forgery = input.forgery else { return outcome }
        var forged = frames
        let target = forgery.frame % read
        let position = forgery.position % forged[target].readableBytes
        let byte = forged[target].getInteger(at: position, as: UInt8.self)!
        forged[target].setInteger(byte ^ max(forgery.mask, 1), at: position)
        (_, receiver) = transports(input.cipher)
        reader = TransportReader(allocator: ByteBufferAllocator())
        for index in 0...target {
            let messages: [WireMessage]
            do {
                messages = try reader.read(frame: forged[index], transport: &receiver)
            } catch NoiseError.decryptionFailed where index == target {
                outcome.forgeryRefused = true
                return outcome
            } catch {
                throw Mismatch(description: "\(input.cipher) forged frame \(target), frame \(index): threw \(error)")
            }
            guard index < target, messages == prediction.messages[index] else {
                throw Mismatch(
                    description: "\(input.cipher) forged frame \(target), frame \(index): \(kinds(messages))")
            }
        }
        preconditionFailure("the loop returns or throws at the forged frame")
    }

    /// What the reader must return for each frame, from `MessageParser`'s run over the whole stream.
    struct Prediction {
        /// The messages each frame completes (the frame holding each one's last byte), up to the refusal.
        var messages: [[WireMessage]]
        /// The frame that must throw, the reason, and whether the reader sees it from the first six bytes before the
        /// parser can (`Outcome.refusedEarly`).
        var refusal: (frame: Int, reason: GoodbyeReason, early: Bool)?
        /// For each frame, how many of its messages are pieces that began in an earlier frame.
        var piecesAcrossFrames: [Int]
    }

    /// Throws when the reader would refuse a message for another reason than the parser.
    static func predict(_ plaintext: [UInt8], lengths: [Int]) throws(Mismatch) -> Prediction {
        // The frame holding byte `index` of the stream (empty frames hold none).
        var ends: [Int] = []
        for length in lengths { ends.append((ends.last ?? 0) + length) }
        func frame(holding index: Int) -> Int {
            var low = 0
            var high = ends.count - 1
            while low < high {
                let middle = (low + high) / 2
                if ends[middle] > index { high = middle } else { low = middle + 1 }
            }
            return low
        }

        var prediction = Prediction(
            messages: Array(repeating: [], count: lengths.count),
            piecesAcrossFrames: Array(repeating: 0, count: lengths.count))
        let parser = MessageParser()
        var buffer = ByteBuffer(bytes: plaintext)
        while true {
            let start = buffer.readerIndex
            do {
                guard let message = try parser.parse(&buffer) else { break }
                let last = frame(holding: buffer.readerIndex - 1)
                prediction.messages[last].append(message)
                if message.kind == .piece, frame(holding: start) != last { prediction.piecesAcrossFrames[last] += 1 }
            } catch {
                // Where the reader sees it: the length's fourth byte, the type's (sixth) byte, or the message's last.
                let length = Int(buffer.getInteger(at: start, as: UInt32.self)!)
                var seenAt = start + 4 + length - 1
                var early = false
                if length < 2 || length > parser.maximumLength {
                    seenAt = start + 3
                } else if let reason = refusalFromPrefix(plaintext, at: start) {
                    guard reason == error.reason else {
                        throw Mismatch(description: "at byte \(start) the reader sees \(reason), the parser \(error)")
                    }
                    seenAt = start + 5
                    early = frame(holding: seenAt) != frame(holding: start + 4 + length - 1)
                }
                prediction.refusal = (frame(holding: seenAt), error.reason, early)
                return prediction
            }
        }
        // The stream ends inside a message: the reader may refuse it from its first six bytes already.
        let start = buffer.readerIndex
        if plaintext.count - start >= 6, let reason = refusalFromPrefix(plaintext, at: start) {
            prediction.refusal = (frame(holding: start + 5), reason, true)
        }
        return prediction
    }

    /// The rules `TransportReader` checks from a message's first six bytes beyond the length (which both check from
    /// its four): the version, and a `piece`'s block length.
    static func refusalFromPrefix(_ plaintext: [UInt8], at start: Int) -> GoodbyeReason? {
        let length = plaintext[start..<start + 4].reduce(0) { $0 << 8 | Int($1) }
        if plaintext[start + 4] != SwarmKit.protocolVersion { return .unsupportedVersion }
        guard plaintext[start + 5] == WireMessage.Kind.piece.rawValue else { return nil }
        return (1...Int(WireLimits.maxBlockLength)).contains(length - 10) ? nil : .malformedMessage
    }

    /// Seals the frames of `lengths` in order.
    static func seal(_ plaintext: [UInt8], lengths: [Int], with sender: inout NoiseTransport) -> [ByteBuffer] {
        var frames: [ByteBuffer] = []
        frames.reserveCapacity(lengths.count)
        var start = 0
        plaintext.withUnsafeBytes { all in
            for length in lengths {
                let part = UnsafeRawBufferPointer(rebasing: all[start..<start + length])
                var frame = ByteBuffer()
                frame.writeWithUnsafeMutableBytes(minimumWritableBytes: length + NoiseCipher.tagLength) { out in
                    let sealed = UnsafeMutableRawBufferPointer(rebasing: out[0..<length + NoiseCipher.tagLength])
                    do { try sender.seal(part, into: sealed) } catch { preconditionFailure("seal: \(error)") }
                    return sealed.count
                }
                frames.append(frame)
                start += length
            }
        }
        return frames
    }

    static func kinds(_ messages: [WireMessage]) -> String {
        "[" + messages.map { "\($0.kind)" }.joined(separator: ", ") + "]"
    }
}

extension TransportReaderDifferential.Input {
    /// An input from a fuzzer's bytes, so that any byte string is one:
    ///
    /// ```
    /// byte 0      bit 0: cipher (0 AESGCM, 1 ChaChaPoly); bit 1: forge a frame; bits 2-4: n, the number of sizes
    /// n × u16     frame sizes, big-endian, each modulo 65520 (so 0 ... 65519)
    /// if forging  u8 frame, u16 position (big-endian), u8 mask (`Forgery`)
    /// the rest    the plaintext stream
    /// ```
    /// Missing header bytes read as 0.
    init(fuzzInput bytes: [UInt8]) {
        var rest = bytes[...]
        func byte() -> Int { Int(rest.popFirst() ?? 0) }
        func u16() -> Int { byte() << 8 | byte() }
        let flags = byte()
        cipher = flags & 1 == 0 ? .aesGCM : .chaChaPoly
        frameSizes = (0..<(flags >> 2 & 7)).map { _ in u16() % (NoiseTransport.maxPlaintextLength + 1) }
        if flags & 2 == 0 {
            forgery = nil
        } else {
            forgery = TransportReaderDifferential.Forgery(frame: byte(), position: u16(), mask: UInt8(byte()))
        }
        plaintext = Array(rest)
    }

    /// The bytes that `init(fuzzInput:)` reads back as this input (exactly when it has at most 7 sizes, each at most
    /// 65519, and a forged frame's number and position fit in a byte and in two).
    var fuzzInput: [UInt8] {
        let sizes = frameSizes.prefix(7)
        var bytes = [UInt8(cipher == .aesGCM ? 0 : 1) | (forgery == nil ? 0 : 2) | UInt8(sizes.count) << 2]
        for size in sizes { bytes += [UInt8(size >> 8), UInt8(truncatingIfNeeded: size)] }
        if let forgery {
            let position = forgery.position & 0xFFFF
            bytes += [UInt8(truncatingIfNeeded: forgery.frame), UInt8(position >> 8), UInt8(position & 0xFF)]
            bytes.append(forgery.mask)
        }
        return bytes + plaintext
    }
}

#if !HARP_WIRE_FUZZ
    /// Seeded differential fuzzing of `TransportReader` against `MessageParser` (docs/fuzzing.md): streams of sample
    /// messages (`WireSamples`), some mutated (`FuzzTests.mutate`), cut into frames at random points, some with a
    /// forged frame, must read the same through the reader as through the parser (`TransportReaderDifferential`).
    @Suite struct TransportReaderFuzzTests {
        static let inputCount = 30_000
        static let seed: UInt64 = 0x7265_6164  // "read"

        /// One generated input: 1-8 pieces of stream (a sample message, one in twelve mutated; a few random bytes; now
        /// and then a block larger than a frame), frame sizes from tiny to full, a forged frame one time in four.
        static func input(_ rng: inout SplitMix64, samples: [[UInt8]]) -> TransportReaderDifferential.Input {
            var plaintext: [UInt8] = []
            for _ in 0...Int(rng.next() % 8) {
                switch rng.next() % 64 {
                case 0:
                    let count = 65_000 + Int(rng.next() % 66_073)  // up to the 128 KiB block limit
                    var block = ByteBuffer(repeating: UInt8(truncatingIfNeeded: rng.next()), count: count)
                    block.setInteger(UInt8(truncatingIfNeeded: rng.next()), at: Int(rng.next() % UInt64(count)))
                    plaintext += Array(
                        WireMessage.piece(Piece(chunk: 1, offset: 0, data: block)).encoded().readableBytesView)
                case 1, 2:
                    plaintext += (0..<Int(rng.next() % 24)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                case let choice:
                    let sample = samples[Int(rng.next() % UInt64(samples.count))]
                    plaintext += choice % 12 == 0 ? FuzzTests.mutate(sample, &rng) : sample
                }
            }
            // Tiny frames for the small streams only, so that a large block is not cut into thousands of frames.
            let smallest = plaintext.count > 16_384 ? 4096 : 0
            let sizes = (0..<Int(rng.next() % 4)).map { _ in
                switch rng.next() % 8 {
                case 0: max(smallest, Int(rng.next() % 17))
                case 1, 2, 3: max(smallest, Int(rng.next() % 600))
                case 4, 5: Int(rng.next() % UInt64(NoiseTransport.maxPlaintextLength + 1))
                default: NoiseTransport.maxPlaintextLength
                }
            }
            let forgery =
                rng.next() % 4 == 0
                ? TransportReaderDifferential.Forgery(
                    frame: Int(rng.next() % 64), position: Int(rng.next() % 65_536),
                    mask: UInt8(truncatingIfNeeded: rng.next() | 1))
                : nil
            return .init(
                cipher: rng.next() % 2 == 0 ? .aesGCM : .chaChaPoly, frameSizes: sizes, forgery: forgery,
                plaintext: plaintext)
        }

        /// Async, and yields now and then: a test that keeps a thread of the cooperative pool busy for seconds (two
        /// threads on two cores) starves the other suites' servers and clients, whose deadlines then pass.
        @Test func readerMatchesParserOnSeededInputs() async {
            var rng = SplitMix64(seed: Self.seed)
            let samples = WireSamples.all.map { Array($0.encoded().readableBytesView) }
            var total = TransportReaderDifferential.Outcome()
            var (refusals, earlyRefusals, forgeries, mismatches) = (0, 0, 0, 0)
            for index in 0..<Self.inputCount {
                if index % 32 == 0 { await Task.yield() }
                let input = Self.input(&rng, samples: samples)
                do {
                    let outcome = try TransportReaderDifferential.check(input)
                    total.messages += outcome.messages
                    total.frames += outcome.frames
                    total.busyFrames += outcome.busyFrames
                    total.piecesAcrossFrames += outcome.piecesAcrossFrames
                    if outcome.refusal != nil { refusals += 1 }
                    if outcome.refusedEarly { earlyRefusals += 1 }
                    if outcome.forgeryRefused { forgeries += 1 }
                } catch {
                    let bytes = input.fuzzInput
                    let shown = bytes.count <= 1024 ? "\(bytes)" : "\(bytes.count) bytes"
                    Issue.record("input \(index), as a fuzz input \(shown): \(error)")
                    mismatches += 1
                    if mismatches == 10 { break }
                }
            }
            // Both outcomes, and the cases the reader handles differently from a whole buffer, must occur often, or
            // the generator is not reaching them.
            let counts =
                "\(total.messages) messages in \(total.frames) frames (\(total.busyFrames) with several, "
                + "\(total.piecesAcrossFrames) pieces across frames), \(refusals) refusals (\(earlyRefusals) early), "
                + "\(forgeries) forged frames"
            // About half of what the seed gives (86,574 messages, 18,623 busy frames, 2,681 pieces across frames,
            // 8,395 refusals of which 488 early, 7,519 forged frames).
            #expect(total.messages > 50_000 && refusals > 4_000, "\(counts)")
            #expect(total.busyFrames > 9_000 && total.piecesAcrossFrames > 1_300, "\(counts)")
            #expect(earlyRefusals > 200 && forgeries > 3_500, "\(counts)")
        }

        /// Fixed inputs in the fuzzer's format (`Input.init(fuzzInput:)`), the cases where the reader's refusal
        /// comes before the parser's, and any input a fuzzer found.
        static let fixedInputs: [[UInt8]] = [
            // A piece whose block is empty, cut after its type byte: the reader refuses in the first frame.
            [0b0_0100, 0, 6] + [0, 0, 0, 10, 1, 0x0A, 0, 0, 0, 1, 0, 0, 0, 0],
            // A piece shorter than its header, and the stream ends before it does: only the reader refuses.
            [0b0_0001] + [0, 0, 0, 9, 1, 0x0A, 0, 0],
            // Version 2, the message cut over three frames: the reader refuses in the second, the parser at the end.
            [0b0_1001, 0, 4, 0, 3] + [0, 0, 0, 6, 2, 0x08, 0, 0, 0, 1],
            // An oversized length in the first frame, a forged tag in it: a decryption failure.
            [0b0_0110, 0, 4, 0, 0, 19, 1] + [0x7F, 0xFF, 0xFF, 0xFF, 1, 0x09],
        ]

        @Test(arguments: fixedInputs)
        func fixedInputReadsAsPredicted(_ bytes: [UInt8]) throws {
            let input = TransportReaderDifferential.Input(fuzzInput: bytes)
            #expect(input.fuzzInput == bytes)
            let outcome = try TransportReaderDifferential.check(input)
            #expect(outcome.refusal != nil || outcome.forgeryRefused)
        }
    }
#endif
