/// Noise `SymmetricState` (revision 34, section 5.2): the chaining key `ck`, the handshake hash `h`
/// and the current `CipherState`.
struct NoiseSymmetricState {
    private(set) var cipherState: NoiseCipherState
    private var chainingKey: SecureBytes
    /// The handshake hash `h`. It is public information in Noise (it becomes the channel binding).
    private(set) var handshakeHash: [UInt8]

    /// Noise `InitializeSymmetric(protocol_name)`: names of at most 32 bytes are zero-padded,
    /// longer ones are hashed; `ck = h`.
    init(protocolName: String, cipher: NoiseCipher) {
        let name = Array(protocolName.utf8)
        if name.count <= NoiseHash.hashLength {
            handshakeHash = name + [UInt8](repeating: 0, count: NoiseHash.hashLength - name.count)
        } else {
            handshakeHash = name.withUnsafeBytes { NoiseHash.sha256($0) }
        }
        chainingKey = SecureBytes(copying: handshakeHash)
        cipherState = NoiseCipherState(cipher: cipher)
    }

    /// Noise `MixKey(input_key_material)`.
    mutating func mixKey(_ inputKeyMaterial: UnsafeRawBufferPointer) {
        let outputs = NoiseHash.hkdf(chainingKey: chainingKey, inputKeyMaterial: inputKeyMaterial, outputs: 2)
        chainingKey = outputs[0]
        cipherState.initializeKey(outputs[1])
    }

    mutating func mixKey(_ secret: SecureBytes) {
        secret.withUnsafeBytes { mixKey($0) }
    }

    /// Noise `MixHash(data)`: `h = HASH(h || data)`.
    mutating func mixHash(_ data: UnsafeRawBufferPointer) {
        handshakeHash = handshakeHash.withUnsafeBytes { NoiseHash.sha256($0, data) }
    }

    mutating func mixHash(_ data: [UInt8]) {
        data.withUnsafeBytes { mixHash($0) }
    }

    /// Noise `MixKeyAndHash(input_key_material)` (used by the `psk` token).
    mutating func mixKeyAndHash(_ inputKeyMaterial: SecureBytes) {
        let outputs = inputKeyMaterial.withUnsafeBytes {
            NoiseHash.hkdf(chainingKey: chainingKey, inputKeyMaterial: $0, outputs: 3)
        }
        chainingKey = outputs[0]
        outputs[1].withUnsafeBytes { mixHash($0) }
        cipherState.initializeKey(outputs[2])
    }

    /// Noise `EncryptAndHash(plaintext)`.
    mutating func encryptAndHash(_ plaintext: [UInt8]) throws(NoiseError) -> [UInt8] {
        let ciphertext = try cipherState.encryptWithAd(handshakeHash, plaintext: plaintext)
        mixHash(ciphertext)
        return ciphertext
    }

    /// Noise `DecryptAndHash(ciphertext)`.
    mutating func decryptAndHash(_ ciphertext: [UInt8]) throws(NoiseError) -> [UInt8] {
        let plaintext = try cipherState.decryptWithAd(handshakeHash, ciphertext: ciphertext)
        mixHash(ciphertext)
        return plaintext
    }

    /// Noise `Split()`: two CipherStates, the first for initiator→responder, the second for the reverse.
    func split() -> (NoiseCipherState, NoiseCipherState) {
        let outputs = NoiseHash.hkdf(
            chainingKey: chainingKey, inputKeyMaterial: UnsafeRawBufferPointer(start: nil, count: 0), outputs: 2)
        return (
            NoiseCipherState(cipher: cipherState.cipher, key: outputs[0]),
            NoiseCipherState(cipher: cipherState.cipher, key: outputs[1])
        )
    }
}
