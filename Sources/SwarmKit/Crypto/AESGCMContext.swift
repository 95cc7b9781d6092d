internal import COpenSSL
internal import Synchronization

/// AES-256-GCM under one key with the system's OpenSSL (libcrypto): the key is expanded once, when the context is
/// made, and each message is sealed or opened in place, straight from the caller's bytes into the caller's buffer.
///
/// Why not swift-crypto's `AES.GCM`, which harp used before: its API makes a new BoringSSL context (and expands the
/// key) for every message, and copies each frame twice, into a `SealedBox` and out of a `Data`
/// (docs/benchmarks.md, "One-to-one, third part"). OpenSSL's streaming interface also lets a message be decrypted in
/// pieces to different places, which `openPart` offers to the transport.
///
/// Key material: OpenSSL keeps the expanded key in the context, which `EVP_CIPHER_CTX_free` wipes (its GCM
/// implementation frees its state with `OPENSSL_clear_free`) when the last reference to this object goes. The raw
/// key is not kept here.
///
/// A context is one message at a time. In harp each is used by one Noise cipher state, on one event loop; the lock
/// makes any other use safe rather than fast, and is why the class may be `@unchecked Sendable`: the context is
/// touched only while it is held.
final class AESGCMContext: @unchecked Sendable {
    private let pointer: OpaquePointer
    private let lock = Mutex(())

    /// A context for the 32-byte key.
    init(key: SecureBytes) {
        pointer = key.withUnsafeBytes { Self.make($0) }
    }

    private func withContext<R>(_ body: (OpaquePointer) -> R) -> R {
        lock.withLock { _ in body(pointer) }
    }

    /// `withContext` with the 12-byte Noise nonce for `counter` (4 zero bytes, then the counter big-endian; Noise
    /// revision 34, section 12).
    private func withContext<R>(nonce counter: UInt64, _ body: (OpaquePointer, UnsafeRawBufferPointer) -> R) -> R {
        NoiseCipher.withNonce(counter, bigEndian: true) { nonce in withContext { body($0, nonce) } }
    }

    private static func make(_ key: UnsafeRawBufferPointer) -> OpaquePointer {
        precondition(key.count == 32, "AES-256-GCM needs a 32-byte key")
        guard let made = harp_gcm_new(key.baseAddress!.assumingMemoryBound(to: UInt8.self)) else {
            preconditionFailure("OpenSSL cannot make an AES-256-GCM context")
        }
        return made
    }

    deinit {
        EVP_CIPHER_CTX_free(pointer)
    }

    /// Encrypts `plaintext` under the Noise nonce for `counter` (4 zero bytes, then the counter big-endian) and `ad`
    /// into `out`: the ciphertext, then the 16-byte tag (`out.count == plaintext.count + 16`). `out` may start at
    /// `plaintext`'s first byte (in place).
    func seal(
        counter: UInt64, ad: UnsafeRawBufferPointer,
        plaintext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) {
        precondition(out.count == plaintext.count + NoiseCipher.tagLength)
        let sealed = withContext(nonce: counter) { ctx, nonce in
            harp_gcm_begin(ctx, Self.bytes(nonce), 1, Self.bytes(ad), ad.count) == 1
                && harp_gcm_update(ctx, Self.bytes(plaintext), Self.mutableBytes(out), plaintext.count) == 1
                && harp_gcm_seal_final(ctx, Self.mutableBytes(out)! + plaintext.count) == 1
        }
        precondition(sealed, "OpenSSL's AES-256-GCM refused to encrypt")
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
            harp_gcm_begin(ctx, Self.bytes(nonce), 0, Self.bytes(ad), ad.count) == 1
                && harp_gcm_update(ctx, Self.bytes(ciphertext), Self.mutableBytes(out), count) == 1
                && harp_gcm_open_final(ctx, Self.bytes(ciphertext)! + count) == 1
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
            harp_gcm_begin(ctx, Self.bytes(nonce), 0, Self.bytes(ad), ad.count) == 1
        }
        precondition(begun, "OpenSSL's AES-256-GCM refused to start a message")
    }

    /// Decrypts the message's next `ciphertext.count` bytes into `out` (as many bytes, possibly in place).
    func openPart(_ ciphertext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count == ciphertext.count)
        let done = withContext {
            harp_gcm_update($0, Self.bytes(ciphertext), Self.mutableBytes(out), ciphertext.count) == 1
        }
        precondition(done, "OpenSSL's AES-256-GCM refused to decrypt")
    }

    /// Whether the 16-byte `tag` authenticates the message begun by `beginOpen`, its associated data and every
    /// part.
    func finishOpen(tag: UnsafeRawBufferPointer) -> Bool {
        precondition(tag.count == NoiseCipher.tagLength)
        return withContext { harp_gcm_open_final($0, Self.bytes(tag)) == 1 }
    }

    private static func bytes(_ buffer: UnsafeRawBufferPointer) -> UnsafePointer<UInt8>? {
        buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
    }

    private static func mutableBytes(_ buffer: UnsafeMutableRawBufferPointer) -> UnsafeMutablePointer<UInt8>? {
        buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
    }
}
