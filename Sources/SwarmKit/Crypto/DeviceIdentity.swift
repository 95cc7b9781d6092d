internal import CSodium

/// This installation's identity: an Ed25519 key pair. Peers are named by its public key.
///
/// The same key, converted to X25519 with libsodium, is the Noise static key, so a completed handshake
/// proves possession of the device key (docs/protocol.md §3.2). Create it once with
/// `DeviceIdentity.loadOrCreate(at:)`; the file holds the 32-byte seed and is always mode 0600.
public struct DeviceIdentity: Sendable {
    /// The Ed25519 public key (32 bytes): the device's name on the wire.
    public let publicKey: [UInt8]
    /// libsodium's 64-byte Ed25519 secret key (seed || public key).
    let secretKey: SecureBytes

    /// Derives the key pair from a 32-byte seed (`crypto_sign_seed_keypair`).
    init(seed: SecureBytes) {
        precondition(seed.count == 32)
        var pk = [UInt8](repeating: 0, count: 32)
        let sk = seed.withUnsafeBytes { seedBytes in
            SecureBytes(count: 64) { out in
                let rc = crypto_sign_seed_keypair(
                    &pk, out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    seedBytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
                precondition(rc == 0, "crypto_sign_seed_keypair failed")
            }
        }
        self.publicKey = pk
        self.secretKey = sk
    }

    /// A new random identity held only in memory (tests, benchmarks).
    public static func generate() -> DeviceIdentity {
        DeviceIdentity(seed: Sodium.randomBytes(32))
    }

    /// The 32-byte seed, for writing the key file.
    var seed: SecureBytes {
        secretKey.withUnsafeBytes { SecureBytes(copying: UnsafeRawBufferPointer(rebasing: $0[0..<32])) }
    }

    /// The short fingerprint people compare: see `DeviceIdentity.fingerprint(of:)`.
    public var fingerprint: String { Self.fingerprint(of: publicKey) }

    /// `base32(SHA-256("harp/v1/device-fingerprint" || publicKey)[0..<10])`, RFC 4648 alphabet in lower
    /// case, 16 characters in four groups of four joined by `-` (80 bits), e.g. `k3vq-7d2m-xa4e-p9rt`.
    public static func fingerprint(of publicKey: [UInt8]) -> String {
        let label = Array("harp/v1/device-fingerprint".utf8)
        let digest = label.withUnsafeBytes { l in publicKey.withUnsafeBytes { NoiseHash.sha256(l, $0) } }
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567")
        var characters: [Character] = []
        var buffer: UInt32 = 0
        var bits = 0
        for byte in digest.prefix(10) {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                characters.append(alphabet[Int((buffer >> UInt32(bits)) & 31)])
            }
        }
        var groups: [String] = []
        for start in stride(from: 0, to: characters.count, by: 4) {
            groups.append(String(characters[start..<min(start + 4, characters.count)]))
        }
        return groups.joined(separator: "-")
    }

    /// An Ed25519 signature (64 bytes) over `message`.
    public func sign(_ message: [UInt8]) -> [UInt8] {
        Self.sign(message, secretKey: secretKey)
    }

    /// Verifies an Ed25519 signature made by `publicKey`.
    public static func verify(signature: [UInt8], message: [UInt8], publicKey: [UInt8]) -> Bool {
        Sodium.ensureInitialised()
        guard signature.count == 64, publicKey.count == 32 else { return false }
        return crypto_sign_verify_detached(signature, message, UInt64(message.count), publicKey) == 0
    }

    static func sign(_ message: [UInt8], secretKey: SecureBytes) -> [UInt8] {
        var signature = [UInt8](repeating: 0, count: 64)
        let rc = secretKey.withUnsafeBytes { sk in
            crypto_sign_detached(
                &signature, nil, message, UInt64(message.count),
                sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        precondition(rc == 0, "crypto_sign_detached failed")
        return signature
    }

    /// The Noise static key: the device key converted to X25519 (`crypto_sign_ed25519_sk_to_curve25519`).
    var noiseStaticKey: X25519KeyPair {
        let curveSecret = secretKey.withUnsafeBytes { sk in
            SecureBytes(count: 32) { out in
                let rc = crypto_sign_ed25519_sk_to_curve25519(
                    out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
                precondition(rc == 0, "crypto_sign_ed25519_sk_to_curve25519 failed")
            }
        }
        return X25519KeyPair(privateKey: curveSecret)
    }

    /// The X25519 public key that the Ed25519 public key `publicKey` converts to, or nil when it is not
    /// a valid Ed25519 point (`crypto_sign_ed25519_pk_to_curve25519` fails).
    static func noiseStaticPublicKey(forDeviceKey publicKey: [UInt8]) -> [UInt8]? {
        Sodium.ensureInitialised()
        guard publicKey.count == 32 else { return nil }
        var curve = [UInt8](repeating: 0, count: 32)
        guard crypto_sign_ed25519_pk_to_curve25519(&curve, publicKey) == 0 else { return nil }
        return curve
    }
}
