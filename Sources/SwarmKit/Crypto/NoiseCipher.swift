internal import CSodium

/// The two Noise cipher functions harp supports, both from libsodium.
public enum NoiseCipher: String, Sendable, CaseIterable {
    /// ChaCha20-Poly1305 (IETF, 96-bit nonce = 4 zero bytes + little-endian 64-bit counter).
    case chaChaPoly = "ChaChaPoly"
    /// AES-256-GCM (96-bit nonce = 4 zero bytes + big-endian 64-bit counter); needs AES-NI.
    case aesGCM = "AESGCM"

    /// The length of the authentication tag every ciphertext carries.
    public static let tagLength = 16

    /// Whether this machine can run the cipher (AES-256-GCM in libsodium requires AES-NI + PCLMUL).
    public var isAvailable: Bool {
        switch self {
        case .chaChaPoly: return true
        case .aesGCM: return Sodium.aes256GCMAvailable
        }
    }

    /// The transport cipher harp prefers on this machine: AES-256-GCM where the CPU has AES instructions
    /// (measured faster here, see docs/benchmarks.md ("Wire")), ChaChaPoly otherwise.
    public static var preferred: NoiseCipher {
        NoiseCipher.aesGCM.isAvailable ? .aesGCM : .chaChaPoly
    }

    /// Calls `body` with the 12-byte AEAD nonce for `counter`: 4 zero bytes, then the counter as a 64-bit
    /// integer, little-endian for ChaChaPoly and big-endian for AESGCM (Noise revision 34, section 12).
    private func withNonce<R>(_ counter: UInt64, _ body: (UnsafePointer<UInt8>) -> R) -> R {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 12) { nonce in
            for index in 0..<4 { nonce[index] = 0 }
            for index in 0..<8 {
                let shift = self == .chaChaPoly ? 8 * index : 8 * (7 - index)
                nonce[4 + index] = UInt8(truncatingIfNeeded: counter >> UInt64(shift))
            }
            return body(UnsafePointer(nonce.baseAddress!))
        }
    }

    /// Noise `ENCRYPT(k, n, ad, plaintext)`; writes `plaintext.count + 16` bytes into `out`.
    func seal(
        key: SecureBytes, nonce: UInt64, ad: UnsafeRawBufferPointer,
        plaintext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) {
        precondition(out.count == plaintext.count + Self.tagLength)
        var written: UInt64 = 0
        let rc = key.withUnsafeBytes { k in
            withNonce(nonce) { np in
                let c = out.baseAddress!.assumingMemoryBound(to: UInt8.self)
                let m = plaintext.baseAddress?.assumingMemoryBound(to: UInt8.self)
                let a = ad.baseAddress?.assumingMemoryBound(to: UInt8.self)
                let kp = k.baseAddress!.assumingMemoryBound(to: UInt8.self)
                switch self {
                case .chaChaPoly:
                    return crypto_aead_chacha20poly1305_ietf_encrypt(
                        c, &written, m, UInt64(plaintext.count), a, UInt64(ad.count), nil, np, kp)
                case .aesGCM:
                    return crypto_aead_aes256gcm_encrypt(
                        c, &written, m, UInt64(plaintext.count), a, UInt64(ad.count), nil, np, kp)
                }
            }
        }
        precondition(rc == 0 && written == UInt64(out.count), "AEAD encryption cannot fail")
    }

    /// Noise `DECRYPT(k, n, ad, ciphertext)`; writes `ciphertext.count - 16` bytes into `out`.
    func open(
        key: SecureBytes, nonce: UInt64, ad: UnsafeRawBufferPointer,
        ciphertext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) throws(NoiseError) {
        guard ciphertext.count >= Self.tagLength, out.count == ciphertext.count - Self.tagLength else {
            throw .invalidMessageLength
        }
        var written: UInt64 = 0
        // An empty plaintext still gets a valid pointer: libsodium writes `mlen` = 0 bytes through it.
        let rc = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1) { scratch in
            key.withUnsafeBytes { k in
                withNonce(nonce) { np in
                    let mp = out.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? scratch.baseAddress!
                    let c = ciphertext.baseAddress!.assumingMemoryBound(to: UInt8.self)
                    let a = ad.baseAddress?.assumingMemoryBound(to: UInt8.self)
                    let kp = k.baseAddress!.assumingMemoryBound(to: UInt8.self)
                    switch self {
                    case .chaChaPoly:
                        return crypto_aead_chacha20poly1305_ietf_decrypt(
                            mp, &written, nil, c, UInt64(ciphertext.count), a, UInt64(ad.count), np, kp)
                    case .aesGCM:
                        return crypto_aead_aes256gcm_decrypt(
                            mp, &written, nil, c, UInt64(ciphertext.count), a, UInt64(ad.count), np, kp)
                    }
                }
            }
        }
        guard rc == 0 else { throw .decryptionFailed }
    }
}
