import Testing

@testable import SwarmKit

/// Noise AESGCM from BoringSSL (`AESGCMContext`) against libsodium's AES-256-GCM, an independent implementation, byte
/// for byte in both directions, and every kind of tampering refused. The nonce for libsodium is built here, independently
/// of `NoiseCipher`: 4 zero bytes, then the 64-bit counter big-endian (Noise revision 34, section 12).
@Suite(.enabled(if: AESGCMReference.isAvailable, "libsodium's AES-256-GCM needs AES-NI and PCLMUL"))
struct AESGCMTests {
    static let keyBytes: [UInt8] = (0..<32).map { UInt8($0 &* 7 &+ 3) }
    static let key = SecureBytes(copying: keyBytes)

    /// Counters whose bytes differ, so that a swapped byte order or a shifted counter changes the nonce; and sizes
    /// from empty to a full frame, around AES's 16-byte block.
    static let cases: [(counter: UInt64, size: Int, adSize: Int)] = [
        (0, 0, 0), (1, 1, 0), (2, 15, 32), (0x0102_0304_0506_0708, 16, 0), (0xFFFF_FFFF, 17, 32),
        (1 << 32, 1000, 5), (.max - 1, 4096, 0), (.max, 32, 0), (0x8000_0000_0000_0001, 65519, 32),
    ]

    static func nonce(_ counter: UInt64) -> [UInt8] {
        [0, 0, 0, 0] + (0..<8).map { UInt8(truncatingIfNeeded: counter >> (56 - 8 * UInt64($0))) }
    }

    static func bytes(_ count: Int, seed: UInt8) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31) ^ seed }
    }

    static func sealNew(counter: UInt64, ad: [UInt8], plaintext: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: plaintext.count + NoiseCipher.tagLength)
        ad.withUnsafeBytes { a in
            plaintext.withUnsafeBytes { p in
                out.withUnsafeMutableBytes {
                    NoiseCipher.aesGCM.seal(key: key, nonce: counter, ad: a, plaintext: p, into: $0)
                }
            }
        }
        return out
    }

    static func openNew(counter: UInt64, ad: [UInt8], ciphertext: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard ciphertext.count >= NoiseCipher.tagLength else { throw .invalidMessageLength }
        var out = [UInt8](repeating: 0, count: ciphertext.count - NoiseCipher.tagLength)
        var failure: NoiseError?
        ad.withUnsafeBytes { a in
            ciphertext.withUnsafeBytes { c in
                out.withUnsafeMutableBytes { o in
                    do throws(NoiseError) {
                        try NoiseCipher.aesGCM.open(key: key, nonce: counter, ad: a, ciphertext: c, into: o)
                    } catch { failure = error }
                }
            }
        }
        if let failure { throw failure }
        return out
    }

    static func sealSodium(counter: UInt64, ad: [UInt8], plaintext: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: plaintext.count + NoiseCipher.tagLength)
        keyBytes.withUnsafeBytes { k in
            nonce(counter).withUnsafeBytes { n in
                ad.withUnsafeBytes { a in
                    plaintext.withUnsafeBytes { p in
                        out.withUnsafeMutableBytes {
                            AESGCMReference.seal(key: k, nonce: n, ad: a, plaintext: p, into: $0)
                        }
                    }
                }
            }
        }
        return out
    }

    static func openSodium(counter: UInt64, ad: [UInt8], ciphertext: [UInt8]) throws(NoiseError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: ciphertext.count - NoiseCipher.tagLength)
        var failure: NoiseError?
        keyBytes.withUnsafeBytes { k in
            nonce(counter).withUnsafeBytes { n in
                ad.withUnsafeBytes { a in
                    ciphertext.withUnsafeBytes { c in
                        out.withUnsafeMutableBytes { o in
                            do throws(NoiseError) {
                                try AESGCMReference.open(key: k, nonce: n, ad: a, ciphertext: c, into: o)
                            } catch { failure = error }
                        }
                    }
                }
            }
        }
        if let failure { throw failure }
        return out
    }

    @Test(arguments: 0..<cases.count)
    func sealedByBoringSSLOpensWithLibsodium(_ index: Int) throws {
        let (counter, size, adSize) = Self.cases[index]
        let plaintext = Self.bytes(size, seed: 0x5A), ad = Self.bytes(adSize, seed: 0xC3)
        let sealed = Self.sealNew(counter: counter, ad: ad, plaintext: plaintext)
        // Same bytes as libsodium's: ciphertext first, the 16-byte tag last, the same nonce.
        #expect(sealed == Self.sealSodium(counter: counter, ad: ad, plaintext: plaintext))
        #expect(try Self.openSodium(counter: counter, ad: ad, ciphertext: sealed) == plaintext)
        // Under the neighbouring counter it is another message.
        #expect(throws: NoiseError.decryptionFailed) {
            try Self.openSodium(counter: counter &+ 1, ad: ad, ciphertext: sealed)
        }
    }

    @Test(arguments: 0..<cases.count)
    func sealedByLibsodiumOpensWithBoringSSL(_ index: Int) throws {
        let (counter, size, adSize) = Self.cases[index]
        let plaintext = Self.bytes(size, seed: 0x3C), ad = Self.bytes(adSize, seed: 0x96)
        let sealed = Self.sealSodium(counter: counter, ad: ad, plaintext: plaintext)
        #expect(try Self.openNew(counter: counter, ad: ad, ciphertext: sealed) == plaintext)
        #expect(throws: NoiseError.decryptionFailed) {
            try Self.openNew(counter: counter &- 1, ad: ad, ciphertext: sealed)
        }
    }

    /// Each byte of ciphertext, tag and associated data flipped in turn: every one fails to open, with either
    /// cipher, and the untouched message still opens.
    @Test(arguments: NoiseCipher.allCases)
    func everyFlippedByteFailsToOpen(_ cipher: NoiseCipher) throws {
        let plaintext = Self.bytes(40, seed: 0x11), ad = Self.bytes(32, seed: 0x22)
        var sealer = NoiseCipherState(cipher: cipher, key: Self.key)
        let sealed = try sealer.encryptWithAd(ad, plaintext: plaintext)
        #expect(sealed.count == plaintext.count + NoiseCipher.tagLength)
        func opens(_ ad: [UInt8], _ ciphertext: [UInt8]) -> Bool {
            var opener = NoiseCipherState(cipher: cipher, key: Self.key)
            return (try? opener.decryptWithAd(ad, ciphertext: ciphertext)) == plaintext
        }
        #expect(opens(ad, sealed))
        // Bytes 0..<40 are ciphertext, 40..<56 the tag.
        for index in sealed.indices {
            var tampered = sealed
            tampered[index] ^= 0x01
            #expect(!opens(ad, tampered), "flipped byte \(index) of \(sealed.count) opened")
        }
        for index in ad.indices {
            var tamperedAD = ad
            tamperedAD[index] ^= 0x80
            #expect(!opens(tamperedAD, sealed), "flipped byte \(index) of the associated data opened")
        }
        #expect(!opens([], sealed))
        #expect(!opens(ad, Array(sealed.dropLast())))
    }

    /// A failed open leaves the nonce where it was, so the real message still opens after a forged one.
    @Test func failedOpenDoesNotAdvanceTheNonce() throws {
        var sealer = NoiseCipherState(cipher: .aesGCM, key: Self.key)
        let sealed = try sealer.encryptWithAd([], plaintext: [1, 2, 3])
        var opener = NoiseCipherState(cipher: .aesGCM, key: Self.key)
        var forged = sealed
        forged[forged.count - 1] ^= 0xFF
        #expect(throws: NoiseError.decryptionFailed) { try opener.decryptWithAd([], ciphertext: forged) }
        #expect(opener.nonce == 0)
        #expect(try opener.decryptWithAd([], ciphertext: sealed) == [1, 2, 3])
        #expect(opener.nonce == 1)
    }
}
