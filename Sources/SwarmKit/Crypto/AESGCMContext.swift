// swift-crypto's BoringSSL. Not a product of swift-crypto: SwiftPM hands the C modules a dependency is built on to
// its dependents, and `Crypto` is built on this one. Its symbols carry the `CCryptoBoringSSL_` prefix, so they never
// meet another copy of BoringSSL or OpenSSL in the process.
internal import CCryptoBoringSSL
internal import Synchronization

/// AES-256-GCM under one key with BoringSSL's EVP cipher interface (swift-crypto's copy): the key is expanded once,
/// when the context is made, and each message is sealed or opened in place, straight from the caller's bytes into
/// the caller's buffer. The streaming interface also lets a message be decrypted in pieces to different places, which
/// `openPart` offers to the transport.
///
/// Why BoringSSL's EVP interface, and not swift-crypto's `AES.GCM` or the system's OpenSSL (harp used both before,
/// docs/benchmarks.md "One-to-one, fourth part"): `AES.GCM` makes a new context (and expands the key) for every
/// message and copies each frame twice, into a `SealedBox` and out of a `Data`; OpenSSL 3.0 (Debian 12's) has no code
/// for the vector AES instructions (VAES, VPCLMULQDQ), which BoringSSL uses where the CPU has them: about 3 times
/// OpenSSL's rate through this interface on an Intel Xeon with AVX-512.
///
/// Key material: the context holds the expanded key; `EVP_CIPHER_CTX_free` wipes it (BoringSSL's `OPENSSL_free`
/// cleanses every allocation it frees, and the context itself is zeroed) when the last reference to this object goes.
/// The raw key is not kept here.
///
/// A context is one message at a time. In harp each is used by one Noise cipher state, on one event loop; the lock
/// makes any other use safe rather than fast, and is why the class may be `@unchecked Sendable`: the context is
/// touched only while it is held.
final class AESGCMContext: @unchecked Sendable {
    private typealias Context = UnsafeMutablePointer<EVP_CIPHER_CTX>
    private let pointer: Context
    private let lock = Mutex(())

    /// A context for the 32-byte key.
    init(key: SecureBytes) {
        pointer = key.withUnsafeBytes { Self.make($0) }
    }

    private func withContext<R>(_ body: (Context) -> R) -> R {
        lock.withLock { _ in body(pointer) }
    }

    /// `withContext` with the 12-byte Noise nonce for `counter` (4 zero bytes, then the counter big-endian; Noise
    /// revision 34, section 12).
    private func withContext<R>(nonce counter: UInt64, _ body: (Context, UnsafeRawBufferPointer) -> R) -> R {
        NoiseCipher.withNonce(counter, bigEndian: true) { nonce in withContext { body($0, nonce) } }
    }

    private static func make(_ key: UnsafeRawBufferPointer) -> Context {
        precondition(key.count == 32, "AES-256-GCM needs a 32-byte key")
        guard let made = CCryptoBoringSSL_EVP_CIPHER_CTX_new() else {
            preconditionFailure("BoringSSL cannot make a cipher context")
        }
        guard
            CCryptoBoringSSL_EVP_CipherInit_ex(
                made, CCryptoBoringSSL_EVP_aes_256_gcm(), nil, bytes(key), nil, 1) == 1
        else {
            CCryptoBoringSSL_EVP_CIPHER_CTX_free(made)
            preconditionFailure("BoringSSL cannot make an AES-256-GCM context")
        }
        return made
    }

    /// Starts a message under the 12-byte nonce, encrypting or decrypting, and takes the associated data. The key
    /// stays expanded in the context.
    private static func begin(
        _ ctx: Context, nonce: UnsafeRawBufferPointer, encrypt: Bool, ad: UnsafeRawBufferPointer
    ) -> Bool {
        guard ad.count <= Int(Int32.max),
            CCryptoBoringSSL_EVP_CipherInit_ex(ctx, nil, nil, nil, bytes(nonce), encrypt ? 1 : 0) == 1
        else { return false }
        var written: Int32 = 0
        return ad.isEmpty || CCryptoBoringSSL_EVP_CipherUpdate(ctx, nil, &written, bytes(ad), Int32(ad.count)) == 1
    }

    /// Encrypts or decrypts the message's next `count` bytes from `input` to `output` (which may be the same bytes).
    /// GCM writes as many bytes as it reads, so a message may be cut anywhere.
    private static func update(
        _ ctx: Context, _ input: UnsafePointer<UInt8>?, _ output: UnsafeMutablePointer<UInt8>?, count: Int
    ) -> Bool {
        guard count > 0 else { return true }
        guard count <= Int(Int32.max) else { return false }
        var written: Int32 = 0
        return CCryptoBoringSSL_EVP_CipherUpdate(ctx, output, &written, input, Int32(count)) == 1
            && Int(written) == count
    }

    /// Ends an encrypted message and writes its 16-byte tag.
    private static func sealFinal(_ ctx: Context, tag: UnsafeMutablePointer<UInt8>) -> Bool {
        var written: Int32 = 0
        guard CCryptoBoringSSL_EVP_CipherFinal_ex(ctx, tag, &written) == 1, written == 0 else { return false }
        return CCryptoBoringSSL_EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, Int32(NoiseCipher.tagLength), tag) == 1
    }

    /// Ends a decrypted message: whether the 16-byte tag verifies (when it does not, the bytes written since `begin`
    /// are not to be used).
    private static func openFinal(_ ctx: Context, tag: UnsafePointer<UInt8>) -> Bool {
        // The control call takes a mutable pointer; it only copies the tag.
        guard
            CCryptoBoringSSL_EVP_CIPHER_CTX_ctrl(
                ctx, EVP_CTRL_AEAD_SET_TAG, Int32(NoiseCipher.tagLength), UnsafeMutablePointer(mutating: tag)) == 1
        else { return false }
        var none = (UInt64(0), UInt64(0))
        var written: Int32 = 0
        let verified = withUnsafeMutableBytes(of: &none) {
            CCryptoBoringSSL_EVP_CipherFinal_ex(ctx, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), &written)
        }
        return verified == 1 && written == 0
    }

    deinit {
        CCryptoBoringSSL_EVP_CIPHER_CTX_free(pointer)
    }

    /// Encrypts `plaintext` under the Noise nonce for `counter` (4 zero bytes, then the counter big-endian) and `ad`
    /// into `out`: the ciphertext, then the 16-byte tag (`out.count == plaintext.count + 16`). `out` may start at
    /// `plaintext`'s first byte (in place).
    func seal(
        counter: UInt64, ad: UnsafeRawBufferPointer,
        plaintext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) {
        seal(
            counter: counter, ad: ad, plaintext: plaintext, then: UnsafeRawBufferPointer(start: nil, count: 0),
            into: out)
    }

    /// As `seal(counter:ad:plaintext:into:)` for the plaintext `first` followed by `second`, two buffers that need not
    /// be adjacent: the message is sealed as if they were one (`out.count == first.count + second.count + 16`), and
    /// neither is copied to make them so. Neither may overlap `out`.
    func seal(
        counter: UInt64, ad: UnsafeRawBufferPointer, plaintext first: UnsafeRawBufferPointer,
        then second: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) {
        let count = first.count + second.count
        precondition(out.count == count + NoiseCipher.tagLength)
        let output = Self.mutableBytes(out)!
        let sealed = withContext(nonce: counter) { ctx, nonce in
            Self.begin(ctx, nonce: nonce, encrypt: true, ad: ad)
                && Self.update(ctx, Self.bytes(first), output, count: first.count)
                && Self.update(ctx, Self.bytes(second), output + first.count, count: second.count)
                && Self.sealFinal(ctx, tag: output + count)
        }
        precondition(sealed, "BoringSSL's AES-256-GCM refused to encrypt")
    }

    /// Decrypts `ciphertext` (ciphertext, then the 16-byte tag) under the Noise nonce for `counter` and `ad` into
    /// `out` (`ciphertext.count - 16` bytes, possibly in place). When the tag does not verify, `out` is zero-filled
    /// and the error is `decryptionFailed`.
    func open(
        counter: UInt64, ad: UnsafeRawBufferPointer,
        ciphertext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) throws(NoiseError) {
        let count = ciphertext.count - NoiseCipher.tagLength
        guard count >= 0, out.count == count else { throw .invalidMessageLength }
        let opened = withContext(nonce: counter) { ctx, nonce in
            Self.begin(ctx, nonce: nonce, encrypt: false, ad: ad)
                && Self.update(ctx, Self.bytes(ciphertext), Self.mutableBytes(out), count: count)
                && Self.openFinal(ctx, tag: Self.bytes(ciphertext)! + count)
        }
        guard opened else {
            if count > 0 { out.initializeMemory(as: UInt8.self, repeating: 0) }
            throw .decryptionFailed
        }
    }

    /// Starts decrypting a message in parts: `openPart` for its ciphertext, cut anywhere, then `finishOpen` with
    /// its tag. Nothing decrypted may be used before `finishOpen` returns true.
    func beginOpen(counter: UInt64, ad: UnsafeRawBufferPointer) {
        let begun = withContext(nonce: counter) { ctx, nonce in
            Self.begin(ctx, nonce: nonce, encrypt: false, ad: ad)
        }
        precondition(begun, "BoringSSL's AES-256-GCM refused to start a message")
    }

    /// Decrypts the message's next `ciphertext.count` bytes into `out` (as many bytes, possibly in place).
    func openPart(_ ciphertext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count == ciphertext.count)
        let done = withContext {
            Self.update($0, Self.bytes(ciphertext), Self.mutableBytes(out), count: ciphertext.count)
        }
        precondition(done, "BoringSSL's AES-256-GCM refused to decrypt")
    }

    /// Whether the 16-byte `tag` authenticates the message begun by `beginOpen`, its associated data and every
    /// part.
    func finishOpen(tag: UnsafeRawBufferPointer) -> Bool {
        precondition(tag.count == NoiseCipher.tagLength)
        return withContext { Self.openFinal($0, tag: Self.bytes(tag)!) }
    }

    private static func bytes(_ buffer: UnsafeRawBufferPointer) -> UnsafePointer<UInt8>? {
        buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
    }

    private static func mutableBytes(_ buffer: UnsafeMutableRawBufferPointer) -> UnsafeMutablePointer<UInt8>? {
        buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
    }
}
