internal import CSodium
internal import Crypto
internal import Foundation

/// The keys of one swarm (one file version), derived from its content root R and its swarm salt σ (docs/protocol.md §2):
///
/// - swarm key `K = HKDF-SHA256(IKM = R, salt = σ, info = "harp/v2/swarm-key", L = 32)`: the Noise PSK;
/// - signing seed `HKDF-SHA256(IKM = K, salt = "", info = "harp/v2/swarm-signing", L = 32)`, turned into
///   an Ed25519 key pair with `crypto_sign_seed_keypair`;
/// - swarm id `S`: that key pair's public key.
///
/// σ is 32 random bytes kept in the version's sidecar. Without it, K and S would be functions of the content alone, and
/// whoever sees S (the signaling operator, anyone watching a plain `ws://` connection) could confirm a guess of a
/// low-entropy file and then derive K. With it, only readers of the sidecar, who may read the file anyway, can.
public struct SwarmKeys: Sendable {
    /// K, the pre-shared key of the Noise handshake.
    public let swarmKey: SecureBytes
    /// S, the swarm id: the public half of the swarm signing key. Safe to show to the signaling server.
    public let swarmID: [UInt8]
    /// The Ed25519 swarm signing key (libsodium's 64-byte form).
    let signingKey: SecureBytes

    /// Derives K, the swarm signing key and S from the 32-byte content root `contentRoot` and the 32-byte swarm salt
    /// `salt` (σ, from the version's sidecar).
    public init(contentRoot: [UInt8], salt: [UInt8]) {
        precondition(contentRoot.count == 32, "a content root is 32 bytes")
        precondition(salt.count == 32, "a swarm salt is 32 bytes")
        self.init(swarmKey: Self.hkdf(SymmetricKey(data: contentRoot), salt: salt, info: "harp/v2/swarm-key"))
    }

    /// Uses K directly (a peer that learnt K but not R, and the tests).
    public init(swarmKey: SecureBytes) {
        precondition(swarmKey.count == 32, "a swarm key is 32 bytes")
        Sodium.ensureInitialised()
        let seed = swarmKey.withUnsafeBytes {
            Self.hkdf(SymmetricKey(data: $0), salt: [], info: "harp/v2/swarm-signing")
        }
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

    private static func hkdf(_ inputKeyMaterial: SymmetricKey, salt: [UInt8], info: String) -> SecureBytes {
        let derived = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: inputKeyMaterial, salt: salt, info: Array(info.utf8), outputByteCount: 32)
        return derived.withUnsafeBytes { SecureBytes(copying: $0) }
    }
}
