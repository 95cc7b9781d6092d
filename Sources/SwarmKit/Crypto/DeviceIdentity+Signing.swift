public import Crypto

extension DeviceIdentity {
    /// The same Ed25519 key as a swift-crypto signing key, for the signatures of the version log (its entries and
    /// enrollment requests, docs/proofs.md), which are made with swift-crypto. Both libraries derive the key pair from
    /// the same 32-byte seed, so the public key is `publicKey`.
    public func signingKey() throws -> Curve25519.Signing.PrivateKey {
        try seed.withUnsafeBytes { try Curve25519.Signing.PrivateKey(rawRepresentation: $0) }
    }
}
