public import Crypto

/// The byte strings that peers sign or MAC, each starting with a domain-separation string and a zero byte so a
/// signature made for one purpose is never valid for another (docs/signaling.md, "Proofs").
public enum Proofs {
    /// Domain of the device-key signature in `hello`.
    public static let helloDomain = "harp/v1/signal/hello"
    /// Domain of the swarm-key signature in `join`.
    public static let joinDomain = "harp/v1/signal/join"
    /// Domain of the organisation join-key HMAC in `hello`.
    public static let joinKeyDomain = "harp/v1/signal/join-key"

    /// `"harp/v1/signal/hello" || 0x00 || nonce(32) || device(32)`, signed by the device key.
    public static func helloMessage(nonce: [UInt8], device: DeviceID) -> [UInt8] {
        Array(helloDomain.utf8) + [0] + nonce + device.bytes
    }

    /// `"harp/v1/signal/join" || 0x00 || nonce(32) || device(32) || swarm(32)`, signed by the swarm signing key.
    public static func joinMessage(nonce: [UInt8], device: DeviceID, swarm: SwarmID) -> [UInt8] {
        Array(joinDomain.utf8) + [0] + nonce + device.bytes + swarm.bytes
    }

    /// HMAC-SHA256(joinKey, `"harp/v1/signal/join-key" || 0x00 || nonce(32) || device(32)`): proves knowledge of the
    /// organisation join key without sending it.
    public static func joinKeyProof(joinKey: [UInt8], nonce: [UInt8], device: DeviceID) -> [UInt8] {
        let message = Array(joinKeyDomain.utf8) + [0] + nonce + device.bytes
        return Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: joinKey)))
    }

    /// Checks an Ed25519 signature; any malformed input is simply invalid.
    package static func verify(signature: [UInt8], of message: [UInt8], by key: PublicKey32) -> Bool {
        guard signature.count == 64,
            let publicKey = try? Curve25519.Signing.PublicKey(rawRepresentation: key.bytes)
        else { return false }
        return publicKey.isValidSignature(signature, for: message)
    }

    /// Constant-time comparison of the expected and presented join-key proofs.
    package static func checkJoinKeyProof(
        _ proof: [UInt8], joinKey: [UInt8], nonce: [UInt8], device: DeviceID
    ) -> Bool {
        let message = Array(joinKeyDomain.utf8) + [0] + nonce + device.bytes
        return HMAC<SHA256>.isValidAuthenticationCode(
            proof, authenticating: message, using: SymmetricKey(data: joinKey))
    }
}

/// Something that signs with an Ed25519 key: a device key or a swarm signing key. SwarmKit plugs its libsodium keys
/// in through this protocol; ``Ed25519Signer`` is the swift-crypto implementation.
public protocol SignalSigner: Sendable {
    /// The 32-byte Ed25519 public key.
    var publicKey: PublicKey32 { get }
    /// A 64-byte Ed25519 signature (RFC 8032) over `message`.
    func sign(_ message: [UInt8]) throws -> [UInt8]
}

/// A ``SignalSigner`` over swift-crypto's `Curve25519.Signing.PrivateKey`.
public struct Ed25519Signer: SignalSigner {
    private let key: Curve25519.Signing.PrivateKey
    public let publicKey: PublicKey32

    /// Wraps an existing private key.
    public init(_ key: Curve25519.Signing.PrivateKey) {
        self.key = key
        // A Curve25519 public key's raw representation is always 32 bytes.
        self.publicKey = PublicKey32(exactly: Array(key.publicKey.rawRepresentation))
    }

    /// A fresh random key.
    public init() { self.init(Curve25519.Signing.PrivateKey()) }

    public func sign(_ message: [UInt8]) throws -> [UInt8] {
        Array(try key.signature(for: message))
    }
}
