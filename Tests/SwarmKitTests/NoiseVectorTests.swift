import Testing

@testable import SwarmKit

/// Every handshake message, the handshake hash and the transport messages of the published vectors,
/// byte for byte, in both directions.
@Suite struct NoiseVectorTests {
    @Test(arguments: 0..<4)
    func vector(_ index: Int) throws {
        let vector = try NoiseVectorFile.load().vectors[index]
        let parts = vector.protocol_name.split(separator: "_")
        let pattern = try #require(NoisePattern(rawValue: String(parts[1])))
        let cipher = try #require(NoiseCipher(rawValue: String(parts[3])))
        #expect(NoiseHandshakeState.protocolName(pattern: pattern, cipher: cipher) == vector.protocol_name)
        if cipher == .aesGCM && !cipher.isAvailable { return }
        let initPSK = vector.init_psks?.first.map { SecureBytes(copying: Hex.decode($0)) }
        let respPSK = vector.resp_psks?.first.map { SecureBytes(copying: Hex.decode($0)) }
        func keyPair(_ hex: String) -> X25519KeyPair {
            X25519KeyPair(privateKey: SecureBytes(copying: Hex.decode(hex)))
        }

        var initiator = NoiseHandshakeState(
            pattern: pattern, cipher: cipher, initiator: true, prologue: Hex.decode(vector.init_prologue),
            localStatic: keyPair(vector.init_static), psk: initPSK, ephemeral: keyPair(vector.init_ephemeral))
        var responder = NoiseHandshakeState(
            pattern: pattern, cipher: cipher, initiator: false, prologue: Hex.decode(vector.resp_prologue),
            localStatic: keyPair(vector.resp_static), psk: respPSK, ephemeral: keyPair(vector.resp_ephemeral))

        var messages = vector.messages[...]
        var fromInitiator = true
        while !initiator.isComplete {
            let next = messages.popFirst()
            let message = try #require(next)
            let payload = Hex.decode(message.payload)
            if fromInitiator {
                let written = try initiator.writeMessage(payload: payload)
                #expect(Hex.encode(written) == message.ciphertext)
                #expect(try responder.readMessage(written) == payload)
            } else {
                let written = try responder.writeMessage(payload: payload)
                #expect(Hex.encode(written) == message.ciphertext)
                #expect(try initiator.readMessage(written) == payload)
            }
            fromInitiator.toggle()
        }
        #expect(responder.isComplete)
        if let hash = vector.handshake_hash {
            #expect(Hex.encode(initiator.handshakeHash) == hash)
            #expect(Hex.encode(responder.handshakeHash) == hash)
        }
        #expect(initiator.remoteStatic == keyPair(vector.resp_static).publicKey)
        #expect(responder.remoteStatic == keyPair(vector.init_static).publicKey)

        var initiatorTransport = NoiseTransport(handshake: initiator)
        var responderTransport = NoiseTransport(handshake: responder)
        // After the handshake the next message comes from the other side of the last one (3 messages:
        // the responder sends next), and the sender alternates.
        for message in messages {
            let payload = Hex.decode(message.payload)
            if fromInitiator {
                let sealed = try initiatorTransport.seal(payload)
                #expect(Hex.encode(sealed) == message.ciphertext)
                #expect(try responderTransport.open(sealed) == payload)
            } else {
                let sealed = try responderTransport.seal(payload)
                #expect(Hex.encode(sealed) == message.ciphertext)
                #expect(try initiatorTransport.open(sealed) == payload)
            }
            fromInitiator.toggle()
        }
    }

    @Test func longNamesAreHashedShortNamesPadded() {
        let short = NoiseSymmetricState(protocolName: "Noise_XX_25519_ChaChaPoly_SHA256", cipher: .chaChaPoly)
        #expect(short.handshakeHash == Array("Noise_XX_25519_ChaChaPoly_SHA256".utf8))
        let long = NoiseSymmetricState(protocolName: "Noise_XXpsk3_25519_ChaChaPoly_SHA256", cipher: .chaChaPoly)
        #expect(long.handshakeHash.count == 32 && long.handshakeHash != Array("Noise_XXpsk3_25519_ChaChaPoly_SH".utf8))
    }

    @Test(arguments: NoiseCipher.allCases)
    func rekeyKeepsBothSidesInStep(_ cipher: NoiseCipher) throws {
        guard cipher.isAvailable else { return }
        let key = SecureBytes(copying: [UInt8](repeating: 7, count: 32))
        var sender = NoiseTransport(
            send: NoiseCipherState(cipher: cipher, key: key),
            receive: NoiseCipherState(cipher: cipher, key: key), rekeyInterval: 3)
        var receiver = sender
        var plain = NoiseTransport(
            send: NoiseCipherState(cipher: cipher, key: key),
            receive: NoiseCipherState(cipher: cipher, key: key), rekeyInterval: .max)
        var sealedWithoutRekey: [[UInt8]] = []
        for index in 0..<10 {
            let message = [UInt8](repeating: UInt8(index), count: 100)
            let sealed = try sender.seal(message)
            #expect(try receiver.open(sealed) == message)
            sealedWithoutRekey.append(try plain.seal(message))
            // Messages 0-2 use the first key; from message 3 on the key differs.
            #expect((sealed == sealedWithoutRekey[index]) == (index < 3))
        }
    }
}
