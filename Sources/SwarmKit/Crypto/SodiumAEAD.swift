internal import CSodium

/// libsodium's AEADs: ChaCha20-Poly1305 (IETF) for `NoiseCipher.chaChaPoly`, with the Noise nonce layout, and
/// AES-256-GCM with a nonce as given, for `AESGCMReference` only.
///
/// Key lifetime: the caller's 32-byte key is read for the call only. libsodium 1.0.18 expands the AES key into a
/// 0x238-byte context on the stack of `crypto_aead_aes256gcm_encrypt_detached` (and the decrypt twin) and does not
/// wipe it before returning (read from its disassembly); the stack is overwritten by later calls.
enum SodiumAEAD {
    static func chaChaPolySeal(
        key: UnsafeRawBufferPointer, nonce: UInt64, ad: UnsafeRawBufferPointer,
        plaintext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) {
        NoiseCipher.withNonce(nonce, bigEndian: false) { np in
            seal(.chaChaPoly, key, np, ad, plaintext, out)
        }
    }

    static func chaChaPolyOpen(
        key: UnsafeRawBufferPointer, nonce: UInt64, ad: UnsafeRawBufferPointer,
        ciphertext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) throws(NoiseError) {
        try NoiseCipher.withNonce(nonce, bigEndian: false) { (np) throws(NoiseError) in
            try open(.chaChaPoly, key, np, ad, ciphertext, out)
        }
    }

    /// AES-256-GCM with a 12-byte `nonce` as given (no Noise layout applied).
    static func aesGCMSeal(
        key: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, ad: UnsafeRawBufferPointer,
        plaintext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) {
        precondition(Sodium.aes256GCMAvailable, "libsodium's AES-256-GCM needs AES-NI and PCLMUL")
        seal(.aesGCM, key, nonce, ad, plaintext, out)
    }

    static func aesGCMOpen(
        key: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, ad: UnsafeRawBufferPointer,
        ciphertext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) throws(NoiseError) {
        precondition(Sodium.aes256GCMAvailable, "libsodium's AES-256-GCM needs AES-NI and PCLMUL")
        try open(.aesGCM, key, nonce, ad, ciphertext, out)
    }

    private enum Algorithm { case chaChaPoly, aesGCM }

    private static func seal(
        _ algorithm: Algorithm, _ key: UnsafeRawBufferPointer, _ nonce: UnsafeRawBufferPointer,
        _ ad: UnsafeRawBufferPointer, _ plaintext: UnsafeRawBufferPointer, _ out: UnsafeMutableRawBufferPointer
    ) {
        precondition(key.count == 32 && nonce.count == 12 && out.count == plaintext.count + NoiseCipher.tagLength)
        Sodium.ensureInitialised()
        var written: UInt64 = 0
        let c = out.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let (m, a, np, k) = (bytes(plaintext), bytes(ad), bytes(nonce)!, bytes(key)!)
        let rc: Int32
        switch algorithm {
        case .chaChaPoly:
            rc = crypto_aead_chacha20poly1305_ietf_encrypt(
                c, &written, m, UInt64(plaintext.count), a, UInt64(ad.count), nil, np, k)
        case .aesGCM:
            rc = crypto_aead_aes256gcm_encrypt(c, &written, m, UInt64(plaintext.count), a, UInt64(ad.count), nil, np, k)
        }
        precondition(rc == 0 && written == UInt64(out.count), "AEAD encryption cannot fail")
    }

    private static func open(
        _ algorithm: Algorithm, _ key: UnsafeRawBufferPointer, _ nonce: UnsafeRawBufferPointer,
        _ ad: UnsafeRawBufferPointer, _ ciphertext: UnsafeRawBufferPointer, _ out: UnsafeMutableRawBufferPointer
    ) throws(NoiseError) {
        precondition(key.count == 32 && nonce.count == 12)
        guard ciphertext.count >= NoiseCipher.tagLength, out.count == ciphertext.count - NoiseCipher.tagLength else {
            throw .invalidMessageLength
        }
        Sodium.ensureInitialised()
        var written: UInt64 = 0
        let (c, a, np, k) = (bytes(ciphertext)!, bytes(ad), bytes(nonce)!, bytes(key)!)
        // An empty plaintext still gets a valid pointer: libsodium writes `mlen` = 0 bytes through it.
        let rc = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1) { scratch in
            let m = out.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? scratch.baseAddress!
            switch algorithm {
            case .chaChaPoly:
                return crypto_aead_chacha20poly1305_ietf_decrypt(
                    m, &written, nil, c, UInt64(ciphertext.count), a, UInt64(ad.count), np, k)
            case .aesGCM:
                return crypto_aead_aes256gcm_decrypt(
                    m, &written, nil, c, UInt64(ciphertext.count), a, UInt64(ad.count), np, k)
            }
        }
        guard rc == 0 else { throw .decryptionFailed }
    }

    private static func bytes(_ buffer: UnsafeRawBufferPointer) -> UnsafePointer<UInt8>? {
        buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
    }
}

/// libsodium's AES-256-GCM (`crypto_aead_aes256gcm_*`, combined mode: ciphertext || 16-byte tag): the
/// implementation `NoiseCipher.aesGCM` used before swift-crypto's, kept as the reference the tests cross-check
/// against and the benchmark (`harp-wire-bench aead`) compares with. Sessions never use it.
///
/// It takes the 12-byte nonce as bytes, so that a cross-check builds the Noise layout (4 zero bytes, then the
/// counter big-endian) independently of `NoiseCipher`.
public enum AESGCMReference {
    /// Whether libsodium's AES-256-GCM runs here (it needs AES-NI and PCLMUL).
    public static var isAvailable: Bool { Sodium.aes256GCMAvailable }

    /// Encrypts with a 32-byte `key` and a 12-byte `nonce`; writes `plaintext.count + 16` bytes into `out`.
    public static func seal(
        key: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, ad: UnsafeRawBufferPointer,
        plaintext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) {
        SodiumAEAD.aesGCMSeal(key: key, nonce: nonce, ad: ad, plaintext: plaintext, into: out)
    }

    /// Decrypts and verifies; writes `ciphertext.count - 16` bytes into `out`.
    public static func open(
        key: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, ad: UnsafeRawBufferPointer,
        ciphertext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) throws(NoiseError) {
        try SodiumAEAD.aesGCMOpen(key: key, nonce: nonce, ad: ad, ciphertext: ciphertext, into: out)
    }
}
