internal import CSodium

/// An X25519 key pair for Noise's `DH` function; the private half lives in `SecureBytes`.
public struct X25519KeyPair: Sendable {
    /// The 32-byte public key.
    public let publicKey: [UInt8]
    let privateKey: SecureBytes

    /// Uses the given 32-byte private key (as in the Noise test vectors).
    init(privateKey: SecureBytes) {
        precondition(privateKey.count == 32)
        Sodium.ensureInitialised()
        var pub = [UInt8](repeating: 0, count: 32)
        let rc = privateKey.withUnsafeBytes {
            crypto_scalarmult_base(&pub, $0.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        precondition(rc == 0, "crypto_scalarmult_base failed")
        self.privateKey = privateKey
        self.publicKey = pub
    }

    /// A fresh random key pair (Noise `GENERATE_KEYPAIR`).
    static func generate() -> X25519KeyPair {
        X25519KeyPair(privateKey: Sodium.randomBytes(32))
    }

    /// Noise `DH(key_pair, public_key)`: the 32-byte shared secret.
    ///
    /// - Throws: `NoiseError.invalidPublicKey` when the result is all zeros (a low-order point).
    func sharedSecret(with remotePublicKey: [UInt8]) throws(NoiseError) -> SecureBytes {
        guard remotePublicKey.count == 32 else { throw .invalidPublicKey }
        var failed = false
        let secret = privateKey.withUnsafeBytes { sk in
            SecureBytes(count: 32) { out in
                failed =
                    crypto_scalarmult(
                        out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        sk.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        remotePublicKey) != 0
            }
        }
        if failed { throw .invalidPublicKey }
        return secret
    }
}
