/// Noise AESGCM: AES-256-GCM from swift-crypto's BoringSSL (`AESGCMContext`), the nonce being 4 zero bytes and then the
/// 64-bit counter big-endian (Noise revision 34, section 12).
///
/// `NoiseCipherState` keeps one context per key, so a session expands each key once. The functions here make a
/// context for one message: for `Rekey()` and for the tests.
extension NoiseCipher {
    static func aesGCMSeal(
        key: SecureBytes, nonce: UInt64, ad: UnsafeRawBufferPointer,
        plaintext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) {
        AESGCMContext(key: key).seal(counter: nonce, ad: ad, plaintext: plaintext, into: out)
    }

    static func aesGCMOpen(
        key: SecureBytes, nonce: UInt64, ad: UnsafeRawBufferPointer,
        ciphertext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) throws(NoiseError) {
        try AESGCMContext(key: key).open(counter: nonce, ad: ad, ciphertext: ciphertext, into: out)
    }
}
