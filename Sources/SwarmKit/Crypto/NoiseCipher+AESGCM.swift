internal import Crypto
internal import Foundation

/// Noise AESGCM with swift-crypto's `AES.GCM` (BoringSSL): the handshake's and the transport's one implementation.
///
/// Copies, per 64 KiB frame: the plaintext is read in place (an `UnsafeRawBufferPointer` is one contiguous
/// `DataProtocol` region, so BoringSSL reads the caller's bytes); BoringSSL writes the ciphertext and tag into
/// buffers of its own, `SealedBox` copies them into its combined representation, and one copy moves ciphertext and
/// tag into `out`. Opening: `SealedBox(nonce:ciphertext:tag:)` copies the frame once, BoringSSL decrypts into a
/// buffer of its own, and one copy moves the plaintext into `out`. The public API offers no variant that writes into
/// a caller's buffer; docs/benchmarks.md ("Wire") measures what the copies cost.
///
/// Key material: the key stays in harp's `SecureBytes` (wiped on deinit) for the cipher state's life, as before.
/// For each call it is copied into a `SymmetricKey`, whose storage swift-crypto wipes with `OPENSSL_cleanse` when
/// the key is released at the end of the call. BoringSSL expands the key into an `EVP_AEAD_CTX` inside a
/// swift-crypto object made for the call; `EVP_AEAD_CTX_cleanup` does not wipe AES-GCM's expanded key, so the round
/// keys (from which the key follows) stay in freed heap memory until it is reused. libsodium 1.0.18 leaves its
/// expanded key on the stack in the same way (`SodiumAEAD`); the exposure is of the same kind.
extension NoiseCipher {
    static func aesGCMSeal(
        key: SecureBytes, nonce: UInt64, ad: UnsafeRawBufferPointer,
        plaintext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) {
        let box: AES.GCM.SealedBox
        do {
            let gcmNonce = try withNonce(nonce, bigEndian: true) { try AES.GCM.Nonce(data: $0) }
            box = try key.withUnsafeBytes { k in
                try AES.GCM.seal(plaintext, using: SymmetricKey(data: k), nonce: gcmNonce, authenticating: ad)
            }
        } catch {
            preconditionFailure("AES-GCM encryption with a 32-byte key and a 12-byte nonce cannot fail: \(error)")
        }
        // The combined representation is nonce (12) || ciphertext || tag (16).
        guard let combined = box.combined, combined.count == 12 + out.count else {
            preconditionFailure("AES.GCM.SealedBox without the 12-byte nonce layout")
        }
        combined.withUnsafeBytes { bytes in
            out.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[12...]))
        }
    }

    static func aesGCMOpen(
        key: SecureBytes, nonce: UInt64, ad: UnsafeRawBufferPointer,
        ciphertext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) throws(NoiseError) {
        let tagStart = ciphertext.count - tagLength
        precondition(tagStart >= 0 && out.count == tagStart)
        let plaintext: Data
        do {
            let gcmNonce = try withNonce(nonce, bigEndian: true) { try AES.GCM.Nonce(data: $0) }
            let box = try AES.GCM.SealedBox(
                nonce: gcmNonce, ciphertext: UnsafeRawBufferPointer(rebasing: ciphertext[0..<tagStart]),
                tag: UnsafeRawBufferPointer(rebasing: ciphertext[tagStart...]))
            plaintext = try key.withUnsafeBytes { k in
                try AES.GCM.open(box, using: SymmetricKey(data: k), authenticating: ad)
            }
        } catch {
            throw .decryptionFailed
        }
        guard plaintext.count == out.count else { throw .decryptionFailed }
        if out.count > 0 { plaintext.withUnsafeBytes { out.copyMemory(from: $0) } }
    }
}
