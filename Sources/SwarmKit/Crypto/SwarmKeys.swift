internal import CSodium
internal import Crypto
internal import Foundation

/// The keys of one swarm (one file version), all derived from its content root R (docs/protocol.md §2):
///
/// - swarm key `K = HKDF-SHA256(IKM = R, salt = "", info = "harp/v1/swarm-key", L = 32)`: the Noise PSK;
/// - signing seed `HKDF-SHA256(IKM = K, salt = "", info = "harp/v1/swarm-signing", L = 32)`, turned into
///   an Ed25519 key pair with `crypto_sign_seed_keypair`;
/// - swarm id `S`: that key pair's public key.
///
/// The empty salt means HKDF uses 32 zero bytes (RFC 5869 section 2.2); R is already a uniformly
/// distributed hash output, so a salt adds nothing, and the labels separate the derivations.
public struct SwarmKeys: Sendable {
    /// K, the pre-shared key of the Noise handshake.
    public let swarmKey: SecureBytes
    /// S, the swarm id: the public half of the swarm signing key. Safe to show to the signaling server.
    public let swarmID: [UInt8]
    /// The Ed25519 swarm signing key (libsodium's 64-byte form).
    let signingKey: SecureBytes

    /// Derives K, the swarm signing key and S from the 32-byte content root `contentRoot`.
    public init(contentRoot: [UInt8]) {
        precondition(contentRoot.count == 32, "a content root is 32 bytes")
        self.init(swarmKey: Self.hkdf(SymmetricKey(data: contentRoot), info: "harp/v1/swarm-key"))
    }

    /// Uses K directly (a peer that learnt K but not R, and the tests).
    public init(swarmKey: SecureBytes) {
        precondition(swarmKey.count == 32, "a swarm key is 32 bytes")
        Sodium.ensureInitialised()
        let seed = swarmKey.withUnsafeBytes { Self.hkdf(SymmetricKey(data: $0), info: "harp/v1/swarm-signing") }
        var pk = [UInt8](repeating: 0, count: 32)
        let sk = seed.withUnsafeBytes { seedBytes in
            SecureBytes(count: 64) { out in
                let rc = crypto_sign_seed_keypair(
                    &pk, out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    seedBytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
                precondition(rc == 0, "crypto_sign_seed_keypair failed")
            }
        }
        self.swarmKey = swarmKey
        self.swarmID = pk
        self.signingKey = sk
    }

    /// Signs a signaling server's join challenge with the swarm signing key (Ed25519, 64 bytes).
    public func sign(_ message: [UInt8]) -> [UInt8] {
        DeviceIdentity.sign(message, secretKey: signingKey)
    }

    private static func hkdf(_ inputKeyMaterial: SymmetricKey, info: String) -> SecureBytes {
        let derived = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: inputKeyMaterial, salt: [UInt8](), info: Array(info.utf8), outputByteCount: 32)
        return derived.withUnsafeBytes { SecureBytes(copying: $0) }
    }
}
