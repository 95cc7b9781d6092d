import Testing

@testable import SwarmKit

/// A frame sealed from two buffers (`NoiseCipherState.encryptWithAd(_:plaintext:then:into:)`, which the transport
/// uses for a piece's header and its block) is byte for byte the frame sealed from the two joined, for both ciphers;
/// the one-buffer seal is checked against the published Noise vectors (`NoiseVectorTests`) and libsodium
/// (`AESGCMTests`).
struct SealInPartsTests {
    static let key = SecureBytes(copying: (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 11 &+ 5) })

    /// Whole sizes and where they are cut: empty halves, around AES's 16-byte block, a full frame.
    static let cuts: [(size: Int, cut: Int)] = [
        (0, 0), (1, 0), (1, 1), (14, 14), (15, 14), (17, 1), (33, 16), (1000, 14), (65519, 14), (65519, 65505),
        (65519, 0),
    ]

    static func sealOnce(_ cipher: NoiseCipher, counter: Int, _ plaintext: [UInt8]) throws -> [UInt8] {
        var state = NoiseCipherState(cipher: cipher, key: key)
        for _ in 0..<counter { _ = try state.encryptWithAd([], plaintext: []) }
        return try state.encryptWithAd([], plaintext: plaintext)
    }

    static func sealInTwo(
        _ cipher: NoiseCipher, counter: Int, _ plaintext: [UInt8], cut: Int
    ) throws -> (sealed: [UInt8], nonce: UInt64) {
        var state = NoiseCipherState(cipher: cipher, key: key)
        for _ in 0..<counter { _ = try state.encryptWithAd([], plaintext: []) }
        let first = Array(plaintext[..<cut])
        let second = Array(plaintext[cut...])
        var out = [UInt8](repeating: 0, count: plaintext.count + NoiseCipher.tagLength)
        var failure: NoiseError?
        first.withUnsafeBytes { a in
            second.withUnsafeBytes { b in
                out.withUnsafeMutableBytes { o in
                    do throws(NoiseError) {
                        try state.encryptWithAd(
                            UnsafeRawBufferPointer(start: nil, count: 0), plaintext: a, then: b, into: o)
                    } catch { failure = error }
                }
            }
        }
        if let failure { throw failure }
        return (out, state.nonce)
    }

    @Test(arguments: NoiseCipher.allCases)
    func twoBuffersSealAsTheirJoin(_ cipher: NoiseCipher) throws {
        for (index, c) in Self.cuts.enumerated() {
            let plaintext = (0..<c.size).map { UInt8(truncatingIfNeeded: $0 &* 29 &+ index) }
            let counter = index % 3
            let (sealed, nonce) = try Self.sealInTwo(cipher, counter: counter, plaintext, cut: c.cut)
            #expect(
                sealed == (try Self.sealOnce(cipher, counter: counter, plaintext)), "size \(c.size) cut at \(c.cut)")
            #expect(nonce == UInt64(counter + 1))
        }
    }

    /// The transport's two-buffer seal opens as one frame on the other side.
    @Test(arguments: NoiseCipher.allCases)
    func aFrameSealedInTwoOpens(_ cipher: NoiseCipher) throws {
        var (sender, receiver) = try NoiseTransport.makeInMemoryPair(cipher: cipher)
        let header: [UInt8] = Array(repeating: 7, count: 14)
        let block = (0..<(NoiseTransport.maxPlaintextLength - 14)).map { UInt8(truncatingIfNeeded: $0) }
        var frame = [UInt8](repeating: 0, count: NoiseTransport.maxPlaintextLength + NoiseCipher.tagLength)
        try header.withUnsafeBytes { a in
            try block.withUnsafeBytes { b in
                try frame.withUnsafeMutableBytes { try sender.seal(a, then: b, into: $0) }
            }
        }
        #expect(try receiver.open(frame) == header + block)
    }
}
