/// The two Noise cipher functions harp supports: ChaChaPoly from libsodium, AESGCM from swift-crypto's BoringSSL.
///
/// One implementation of each serves the handshake and the transport alike. AESGCM went from libsodium's
/// `crypto_aead_aes256gcm_*` to swift-crypto's `AES.GCM` (about twice libsodium 1.0.18's rate opening 64 KiB
/// frames), then to the system OpenSSL's EVP interface (one context per key instead of one per frame, and no copy of
/// the frame on either side), and then to the same interface of swift-crypto's BoringSSL (`AESGCMContext`), which uses
/// the CPU's vector AES instructions where OpenSSL 3.0 does not (docs/benchmarks.md, "Wire" and "One-to-one, third
/// part" and "fourth part"). libsodium's version stays as `AESGCMReference`, which the tests cross-check against and
/// the benchmark compares with.
public enum NoiseCipher: String, Sendable, CaseIterable {
    /// ChaCha20-Poly1305 (IETF, 96-bit nonce = 4 zero bytes + little-endian 64-bit counter), libsodium.
    case chaChaPoly = "ChaChaPoly"
    /// AES-256-GCM (96-bit nonce = 4 zero bytes + big-endian 64-bit counter), BoringSSL.
    case aesGCM = "AESGCM"

    /// The length of the authentication tag every ciphertext carries.
    public static let tagLength = 16

    /// Whether this machine can run the cipher. Both always can: BoringSSL runs AES-GCM on CPUs without AES
    /// instructions too (more slowly than ChaChaPoly there, which is what `preferred` is about).
    public var isAvailable: Bool { true }

    /// The transport cipher harp prefers on this machine: AES-256-GCM where the CPU has AES and carry-less
    /// multiply instructions (measured faster here, see docs/benchmarks.md ("Wire")), ChaChaPoly otherwise.
    /// The CPU check is libsodium's `crypto_aead_aes256gcm_is_available()` (AES-NI and PCLMUL on x86-64).
    public static var preferred: NoiseCipher {
        Sodium.aes256GCMAvailable ? .aesGCM : .chaChaPoly
    }

    /// Noise `ENCRYPT(k, n, ad, plaintext)`; writes `plaintext.count + 16` bytes (ciphertext, then tag) into `out`.
    func seal(
        key: SecureBytes, nonce: UInt64, ad: UnsafeRawBufferPointer,
        plaintext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) {
        precondition(out.count == plaintext.count + Self.tagLength)
        switch self {
        case .chaChaPoly:
            key.withUnsafeBytes { k in
                SodiumAEAD.chaChaPolySeal(key: k, nonce: nonce, ad: ad, plaintext: plaintext, into: out)
            }
        case .aesGCM:
            Self.aesGCMSeal(key: key, nonce: nonce, ad: ad, plaintext: plaintext, into: out)
        }
    }

    /// Noise `DECRYPT(k, n, ad, ciphertext)`; writes `ciphertext.count - 16` bytes into `out`.
    func open(
        key: SecureBytes, nonce: UInt64, ad: UnsafeRawBufferPointer,
        ciphertext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) throws(NoiseError) {
        guard ciphertext.count >= Self.tagLength, out.count == ciphertext.count - Self.tagLength else {
            throw .invalidMessageLength
        }
        switch self {
        case .chaChaPoly:
            let failure: NoiseError? = key.withUnsafeBytes { k in
                do throws(NoiseError) {
                    try SodiumAEAD.chaChaPolyOpen(key: k, nonce: nonce, ad: ad, ciphertext: ciphertext, into: out)
                    return nil
                } catch { return error }
            }
            if let failure { throw failure }
        case .aesGCM:
            try Self.aesGCMOpen(key: key, nonce: nonce, ad: ad, ciphertext: ciphertext, into: out)
        }
    }

    /// Calls `body` with the 12-byte AEAD nonce for `counter`: 4 zero bytes, then the counter as a 64-bit
    /// integer, little-endian for ChaChaPoly and big-endian for AESGCM (Noise revision 34, section 12).
    static func withNonce<R, E: Error>(
        _ counter: UInt64, bigEndian: Bool, _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try withUnsafeTemporaryAllocation(byteCount: 12, alignment: 4) { (nonce) throws(E) -> R in
            nonce.storeBytes(of: 0, toByteOffset: 0, as: UInt32.self)
            // Unaligned store (SE-0349): the counter starts at byte 4.
            nonce.storeBytes(
                of: bigEndian ? counter.bigEndian : counter.littleEndian, toByteOffset: 4, as: UInt64.self)
            return try body(UnsafeRawBufferPointer(nonce))
        }
    }
}
