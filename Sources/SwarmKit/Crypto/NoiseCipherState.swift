/// Noise `CipherState` (revision 34, section 5.1): a key `k` (possibly empty) and a 64-bit nonce `n`.
///
/// Without a key, encryption and decryption are the identity (as the handshake needs before the first
/// `MixKey`). The nonce 2^64-1 is reserved: reaching it is `NoiseError.nonceExhausted`.
public struct NoiseCipherState: Sendable {
    /// The cipher function.
    public let cipher: NoiseCipher
    private var key: SecureBytes? {
        didSet { aesGCM = cipher == .aesGCM ? key.map { AESGCMContext(key: $0) } : nil }
    }
    /// AESGCM's context for `key`, made when the key is set, so that a session expands each key once.
    private var aesGCM: AESGCMContext?
    /// The nonce the next `encrypt`/`decrypt` will use.
    public private(set) var nonce: UInt64 = 0

    init(cipher: NoiseCipher, key: SecureBytes? = nil) {
        precondition(key == nil || key?.count == 32)
        self.cipher = cipher
        self.key = key
        aesGCM = cipher == .aesGCM ? key.map { AESGCMContext(key: $0) } : nil
    }

    /// Noise `HasKey()`.
    var hasKey: Bool { key != nil }

    /// Noise `InitializeKey(key)`: sets the key and resets the nonce.
    mutating func initializeKey(_ newKey: SecureBytes) {
        precondition(newKey.count == 32)
        key = newKey
        nonce = 0
    }

    /// The number of bytes `encryptWithAd` writes for `plaintextCount` bytes of input.
    func ciphertextCount(forPlaintext plaintextCount: Int) -> Int {
        hasKey ? plaintextCount + NoiseCipher.tagLength : plaintextCount
    }

    /// Noise `EncryptWithAd(ad, plaintext)` into `out` (`ciphertextCount(forPlaintext:)` bytes).
    mutating func encryptWithAd(
        _ ad: UnsafeRawBufferPointer, plaintext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) throws(NoiseError) {
        guard let key else {
            precondition(out.count == plaintext.count)
            if plaintext.count > 0 { out.copyMemory(from: plaintext) }
            return
        }
        guard nonce != .max else { throw .nonceExhausted }
        if let aesGCM {
            aesGCM.seal(counter: nonce, ad: ad, plaintext: plaintext, into: out)
        } else {
            cipher.seal(key: key, nonce: nonce, ad: ad, plaintext: plaintext, into: out)
        }
        nonce += 1
    }

    /// Noise `DecryptWithAd(ad, ciphertext)` into `out`. The nonce advances only when the tag verifies.
    mutating func decryptWithAd(
        _ ad: UnsafeRawBufferPointer, ciphertext: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer
    ) throws(NoiseError) {
        guard let key else {
            guard out.count == ciphertext.count else { throw .invalidMessageLength }
            if ciphertext.count > 0 { out.copyMemory(from: ciphertext) }
            return
        }
        guard nonce != .max else { throw .nonceExhausted }
        if let aesGCM {
            guard ciphertext.count >= NoiseCipher.tagLength, out.count == ciphertext.count - NoiseCipher.tagLength
            else { throw .invalidMessageLength }
            try aesGCM.open(counter: nonce, ad: ad, ciphertext: ciphertext, into: out)
        } else {
            try cipher.open(key: key, nonce: nonce, ad: ad, ciphertext: ciphertext, into: out)
        }
        nonce += 1
    }

    /// Array convenience for handshake-sized messages.
    mutating func encryptWithAd(_ ad: [UInt8], plaintext: [UInt8]) throws(NoiseError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: ciphertextCount(forPlaintext: plaintext.count))
        var failure: NoiseError?
        ad.withUnsafeBytes { a in
            plaintext.withUnsafeBytes { p in
                out.withUnsafeMutableBytes { o in
                    do throws(NoiseError) { try encryptWithAd(a, plaintext: p, into: o) } catch { failure = error }
                }
            }
        }
        if let failure { throw failure }
        return out
    }

    /// Array convenience for handshake-sized messages.
    mutating func decryptWithAd(_ ad: [UInt8], ciphertext: [UInt8]) throws(NoiseError) -> [UInt8] {
        let plainCount = hasKey ? ciphertext.count - NoiseCipher.tagLength : ciphertext.count
        guard plainCount >= 0 else { throw .invalidMessageLength }
        var out = [UInt8](repeating: 0, count: plainCount)
        var failure: NoiseError?
        ad.withUnsafeBytes { a in
            ciphertext.withUnsafeBytes { c in
                out.withUnsafeMutableBytes { o in
                    do throws(NoiseError) { try decryptWithAd(a, ciphertext: c, into: o) } catch { failure = error }
                }
            }
        }
        if let failure { throw failure }
        return out
    }

    /// Noise `Rekey()`: `k = REKEY(k)`, the first 32 bytes of `ENCRYPT(k, 2^64-1, zerolen, zeros)`.
    /// The nonce is not reset.
    mutating func rekey() {
        guard let key else { preconditionFailure("Rekey() on a CipherState without a key") }
        let zeros = [UInt8](repeating: 0, count: 32)
        let newKey = SecureBytes(count: 32) { out in
            withUnsafeTemporaryAllocation(byteCount: 48, alignment: 16) { sealed in
                zeros.withUnsafeBytes { z in
                    cipher.seal(
                        key: key, nonce: .max, ad: UnsafeRawBufferPointer(start: nil, count: 0),
                        plaintext: z, into: sealed)
                }
                out.copyMemory(from: UnsafeRawBufferPointer(rebasing: sealed[0..<32]))
                sealed.initializeMemory(as: UInt8.self, repeating: 0)
            }
        }
        self.key = newKey
    }
}
