import NIOCore
import Testing

@testable import SwarmKit

/// Seeded random-input fuzzing of the frame and message parsers (docs/fuzzing.md). Each input is either
/// random bytes or a valid encoding with random mutations (flips, truncation, length changes,
/// insertions); the parsers must return a value, nil or a `WireProtocolError`, never crash, never read
/// past their limits, and a decoded message must re-encode to a message that decodes the same.
@Suite struct FuzzTests {
    static let inputCount = 1_000_000
    static let seed: UInt64 = 0x6861_7270  // "harp"

    static func mutate(_ base: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var bytes = base
        for _ in 0..<Int(rng.next() % 4) {
            switch rng.next() % 6 {
            case 0 where !bytes.isEmpty:
                bytes[Int(rng.next() % UInt64(bytes.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
            case 1 where !bytes.isEmpty:
                bytes.removeLast(Int(rng.next() % UInt64(bytes.count)))
            case 2 where bytes.count >= 4:
                // Rewrite the length prefix: small, near the limit, or huge.
                let choices: [UInt32] = [
                    0, 1, 2, 3, UInt32(WireLimits.maxMessageLength), UInt32(WireLimits.maxMessageLength + 1),
                    .max, UInt32(truncatingIfNeeded: rng.next() % 512),
                ]
                let length = choices[Int(rng.next() % UInt64(choices.count))]
                bytes[0] = UInt8(length >> 24); bytes[1] = UInt8(truncatingIfNeeded: length >> 16)
                bytes[2] = UInt8(truncatingIfNeeded: length >> 8); bytes[3] = UInt8(truncatingIfNeeded: length)
            case 3:
                let position = bytes.isEmpty ? 0 : Int(rng.next() % UInt64(bytes.count + 1))
                bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: position)
            case 4 where bytes.count > 5:
                bytes[5] = UInt8(truncatingIfNeeded: rng.next() % 20)  // type code, mostly known ones
            default:
                bytes.append(contentsOf: (0..<Int(rng.next() % 8)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            }
        }
        return bytes
    }

    /// Async, and yields now and then: a test that keeps a thread of the cooperative pool busy for seconds (two
    /// threads on two cores) starves the other suites' servers and clients, whose deadlines then pass.
    @Test func parsersSurviveAMillionInputs() async throws {
        var rng = SplitMix64(seed: Self.seed)
        let samples = WireSamples.all.map { Array($0.encoded().readableBytesView) }
        let messageParser = MessageParser()
        let frameParser = FrameParser()
        var decodedMessages = 0
        var refused = 0
        var buffer = ByteBuffer()
        buffer.reserveCapacity(1024)
        for index in 0..<Self.inputCount {
            if index % 1024 == 0 { await Task.yield() }
            let input: [UInt8]
            if rng.next() % 4 == 0 {
                input = (0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                input = Self.mutate(samples[Int(rng.next() % UInt64(samples.count))], &rng)
            }
            buffer.clear()
            buffer.writeBytes(input)
            var messages = buffer
            do {
                while let message = try messageParser.parse(&messages) {
                    decodedMessages += 1
                    var again = message.encoded()
                    #expect(try messageParser.parse(&again) == message)
                }
            } catch {
                refused += 1
            }
            var frames = buffer
            do {
                while let frame = try frameParser.parse(&frames) {
                    #expect(
                        frame.readableBytes >= frameParser.minimumLength
                            && frame.readableBytes <= frameParser.maximumLength)
                }
            } catch {
                refused += 1
            }
        }
        // Both outcomes must actually occur, or the generator is not exercising the parsers.
        #expect(decodedMessages > 10_000 && refused > 10_000)
    }
}
