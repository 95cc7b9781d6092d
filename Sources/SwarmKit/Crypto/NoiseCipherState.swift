/// Noise `CipherState` (revision 34, section 5.1): a key `k` (possibly empty) and a 64-bit nonce `n`.
///
/// Without a key, encryption and decryption are the identity (as the handshake needs before the first
/// `MixKey`). The nonce 2^64-1 is reserved: reaching it is `NoiseError.nonceExhausted`.
public struct NoiseCipherState: Sendable {
    /// The cipher function.
    public let cipher: NoiseCipher
    private var key: SecureBytes? {
        didSet { aesGCM = Self.context(cipher, key) }
    }
    /// AESGCM's context for `key`, made when the key is set, so that a session expands each key once.
    private var aesGCM: AESGCMContext?
    /// The nonce the next `encrypt`/`decrypt` will use.
    public private(set) var nonce: UInt64 = 0

    init(cipher: NoiseCipher, key: SecureBytes? = nil) {
        precondition(key == nil || key?.count == 32)
        self.cipher = cipher
        self.key = key
        aesGCM = Self.context(cipher, key)
    }

    private static func context(_ cipher: NoiseCipher, _ key: SecureBytes?) -> AESGCMContext? {
        cipher == .aesGCM ? key.map { AESGCMContext(key: $0) } : nil
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

    /// Noise `EncryptWithAd(ad, plaintext)` for the plaintext `first` followed by `second`, into `out`
    /// (`ciphertextCount(forPlaintext: first.count + second.count)` bytes). AESGCM seals the two where they are
    /// (`AESGCMContext.seal(counter:ad:plaintext:then:into:)`); ChaChaPoly, which libsodium seals only whole, joins
    /// them in a scratch buffer first.
    mutating func encryptWithAd(
        _ ad: UnsafeRawBufferPointer, plaintext first: UnsafeRawBufferPointer, then second: UnsafeRawBufferPointer,
        into out: UnsafeMutableRawBufferPointer
    ) throws(NoiseError) {
        if second.isEmpty { return try encryptWithAd(ad, plaintext: first, into: out) }
        if let aesGCM, key != nil {
            guard nonce != .max else { throw .nonceExhausted }
            aesGCM.seal(counter: nonce, ad: ad, plaintext: first, then: second, into: out)
            nonce += 1
            return
        }
        let joined = UnsafeMutableRawBufferPointer.allocate(byteCount: first.count + second.count, alignment: 16)
        defer { joined.deallocate() }
        if !first.isEmpty { joined.copyMemory(from: first) }
        UnsafeMutableRawBufferPointer(rebasing: joined[first.count...]).copyMemory(from: second)
        try encryptWithAd(ad, plaintext: UnsafeRawBufferPointer(joined), into: out)
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
            try aesGCM.open(counter: nonce, ad: ad, ciphertext: ciphertext, into: out)
        } else {
            try cipher.open(key: key, nonce: nonce, ad: ad, ciphertext: ciphertext, into: out)
        }
        nonce += 1
    }

    /// Noise `DecryptWithAd(zerolen, ciphertext)` with the plaintext handed out in parts: `body` takes it through
    /// the opener, in pieces of any size and to wherever it likes, and must take all of it. Its result is returned
    /// only when the tag verifies; otherwise this throws `decryptionFailed` and what `body` was given must not be
    /// used (with AESGCM it was decrypted before the tag was checked). The nonce advances only when the tag verifies.
    ///
    /// AESGCM decrypts each part straight into its destination (`AESGCMContext.openPart`); ChaChaPoly, which
    /// libsodium opens only whole, decrypts the message into a scratch buffer first and copies the parts out.
    mutating func decryptInParts<R>(
        ciphertext: UnsafeRawBufferPointer, _ body: (inout FrameOpener) -> R
    ) throws(NoiseError) -> R {
        guard let key else { preconditionFailure("decryptInParts on a CipherState without a key") }
        guard nonce != .max else { throw .nonceExhausted }
        let count = ciphertext.count - NoiseCipher.tagLength
        guard count >= 0 else { throw .invalidMessageLength }
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        if let aesGCM {
            aesGCM.beginOpen(counter: nonce, ad: empty)
            var opener = FrameOpener(UnsafeRawBufferPointer(rebasing: ciphertext[0..<count]), decrypting: aesGCM)
            let result = body(&opener)
            precondition(opener.remaining == 0, "decryptInParts: the body left part of the message")
            guard aesGCM.finishOpen(tag: UnsafeRawBufferPointer(rebasing: ciphertext[count...])) else {
                throw .decryptionFailed
            }
            nonce += 1
            return result
        }
        let plaintext = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
        defer { plaintext.deallocate() }
        let opened = UnsafeMutableRawBufferPointer(rebasing: plaintext[0..<count])
        try cipher.open(key: key, nonce: nonce, ad: empty, ciphertext: ciphertext, into: opened)
        nonce += 1
        var opener = FrameOpener(UnsafeRawBufferPointer(opened), decrypting: nil)
        let result = body(&opener)
        precondition(opener.remaining == 0, "decryptInParts: the body left part of the message")
        return result
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

/// The plaintext of one message being decrypted in parts (`NoiseCipherState.decryptInParts`): each `next(into:)`
/// writes the following bytes to where the caller chooses. Valid only inside the call that made it.
struct FrameOpener {
    private var source: UnsafeRawBufferPointer
    private let context: AESGCMContext?

    init(_ source: UnsafeRawBufferPointer, decrypting context: AESGCMContext?) {
        self.source = source
        self.context = context
    }

    /// Bytes of the message not handed out yet.
    var remaining: Int { source.count }

    /// Writes the message's next `out.count` bytes (at most `remaining`) into `out`.
    mutating func next(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count <= source.count)
        guard out.count > 0 else { return }
        let part = UnsafeRawBufferPointer(rebasing: source[0..<out.count])
        if let context { context.openPart(part, into: out) } else { out.copyMemory(from: part) }
        source = UnsafeRawBufferPointer(rebasing: source[out.count...])
    }
}
