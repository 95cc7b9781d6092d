import Testing

@testable import SwarmKit

/// The harp handshake as a pure state machine: success, wrong K, every flipped byte, replay, and the
/// binding of device keys.
@Suite struct PeerHandshakeTests {
    struct Transcript {
        var messages: [[UInt8]] = []
        var initiatorResult: PeerHandshakeResult?
        var responderResult: PeerHandshakeResult?
    }

    static let keyA = SecureBytes(copying: [UInt8](repeating: 0xA1, count: 32))
    static let keyB = SecureBytes(copying: [UInt8](repeating: 0xB2, count: 32))

    /// Runs a handshake; `tamper` may change message `i` in flight. Throws the first failure.
    static func run(
        initiator: DeviceIdentity = .generate(), responder: DeviceIdentity = .generate(),
        initiatorKey: SecureBytes = keyA, responderKey: SecureBytes = keyA, cipher: NoiseCipher = .chaChaPoly,
        tamper: (Int, inout [UInt8]) -> Void = { _, _ in }
    ) throws -> Transcript {
        var transcript = Transcript()
        var i = PeerHandshake(initiator: initiator, swarmKey: initiatorKey, cipher: cipher)
        var r = PeerHandshake(responder: responder, swarmKey: responderKey)
        var m1 = try i.start()
        tamper(0, &m1)
        transcript.messages.append(m1)
        guard case .send(var m2) = try r.receive(m1) else { Issue.record("expected message 2"); return transcript }
        tamper(1, &m2)
        transcript.messages.append(m2)
        guard case .sendAndComplete(var m3, let initiatorResult) = try i.receive(m2) else {
            Issue.record("expected message 3"); return transcript
        }
        tamper(2, &m3)
        transcript.messages.append(m3)
        transcript.initiatorResult = initiatorResult
        guard case .complete(let responderResult) = try r.receive(m3) else {
            Issue.record("expected completion"); return transcript
        }
        transcript.responderResult = responderResult
        return transcript
    }

    @Test(arguments: NoiseCipher.allCases)
    func sameKeySucceedsAndBindsDeviceKeys(_ cipher: NoiseCipher) throws {
        guard cipher.isAvailable else { return }
        let alice = DeviceIdentity.generate(), bob = DeviceIdentity.generate()
        let transcript = try Self.run(initiator: alice, responder: bob, cipher: cipher)
        var initiator = try #require(transcript.initiatorResult)
        var responder = try #require(transcript.responderResult)
        #expect(initiator.remoteDeviceKey == bob.publicKey)
        #expect(responder.remoteDeviceKey == alice.publicKey)
        #expect(initiator.handshakeHash == responder.handshakeHash)
        #expect(initiator.cipher == cipher && responder.cipher == cipher)
        let sealed = try initiator.transport.seal(Array("hello".utf8))
        #expect(try responder.transport.open(sealed) == Array("hello".utf8))
        let back = try responder.transport.seal(Array("back".utf8))
        #expect(try initiator.transport.open(back) == Array("back".utf8))
    }

    @Test func differentKeyFails() throws {
        // The responder rejects message 3; the initiator's first transport message would not decrypt either.
        #expect(throws: NoiseError.decryptionFailed) {
            try Self.run(initiatorKey: Self.keyA, responderKey: Self.keyB)
        }
    }

    @Test func everyFlippedByteOfEveryMessageFails() throws {
        let clean = try Self.run()
        for (messageIndex, message) in clean.messages.enumerated() {
            for byteIndex in 0..<message.count {
                for bit in [UInt8(0x01), 0x80] {
                    do {
                        let transcript = try Self.run { index, bytes in
                            if index == messageIndex { bytes[byteIndex] ^= bit }
                        }
                        // A flip is only harmless if it cannot be: every byte is covered by a MAC or the
                        // ephemeral key's hash; so reaching completion on both sides is a failure.
                        Issue.record(
                            "message \(messageIndex) byte \(byteIndex) bit \(bit) accepted: \(transcript.responderResult != nil)"
                        )
                    } catch {
                        // expected
                    }
                }
            }
        }
    }

    @Test func replayedHandshakeFails() throws {
        let alice = DeviceIdentity.generate(), bob = DeviceIdentity.generate()
        let recorded = try Self.run(initiator: alice, responder: bob)
        // An attacker replays Alice's messages 1 and 3 to Bob: Bob's fresh ephemeral makes message 3 fail.
        var bobAgain = PeerHandshake(responder: bob, swarmKey: Self.keyA)
        guard case .send = try bobAgain.receive(recorded.messages[0]) else { Issue.record("no reply"); return }
        #expect(throws: NoiseError.decryptionFailed) { try bobAgain.receive(recorded.messages[2]) }
        // And a replayed message 2 to a new Alice fails too (her fresh ephemeral).
        var aliceAgain = PeerHandshake(initiator: alice, swarmKey: Self.keyA, cipher: .chaChaPoly)
        _ = try aliceAgain.start()
        #expect(throws: NoiseError.self) { try aliceAgain.receive(recorded.messages[1]) }
    }

    @Test func claimingAnotherDeviceKeyFails() throws {
        // Mallory knows K but claims Bob's device key in her payload while using her own static key.
        let bob = DeviceIdentity.generate()
        let mallory = DeviceIdentity.generate()
        var i = PeerHandshake(initiator: .generate(), swarmKey: Self.keyA, cipher: .chaChaPoly)
        let m1 = try i.start()
        // Build Mallory's responder by hand: her Noise static key, Bob's Ed25519 key in the payload.
        var noise = NoiseHandshakeState(
            pattern: .xxPSK3, cipher: .chaChaPoly, initiator: false,
            prologue: PeerHandshake.prologueLabel + [1],
            localStatic: mallory.noiseStaticKey, psk: Self.keyA)
        _ = try noise.readMessage(Array(m1.dropFirst()))
        let forged = try noise.writeMessage(payload: [PeerHandshake.payloadVersion] + bob.publicKey)
        #expect(throws: NoiseError.deviceKeyMismatch) { try i.receive(forged) }
    }

    @Test func expectedRemoteKeyIsEnforced() throws {
        let bob = DeviceIdentity.generate()
        var i = PeerHandshake(
            initiator: .generate(), swarmKey: Self.keyA, cipher: .chaChaPoly,
            expectedRemoteKey: DeviceIdentity.generate().publicKey)
        var r = PeerHandshake(responder: bob, swarmKey: Self.keyA)
        guard case .send(let m2) = try r.receive(try i.start()) else { Issue.record("no reply"); return }
        #expect(throws: NoiseError.deviceKeyMismatch) { try i.receive(m2) }
    }

    @Test func messagesOutOfOrderAreRefused() throws {
        var r = PeerHandshake(responder: .generate(), swarmKey: Self.keyA)
        #expect(throws: NoiseError.self) { try r.receive([]) }
        #expect(throws: NoiseError.unexpectedHandshakeMessage) { try r.receive([1] + [UInt8](repeating: 0, count: 48)) }
        var unknownSuite = PeerHandshake(responder: .generate(), swarmKey: Self.keyA)
        #expect(throws: NoiseError.invalidPayload) { try unknownSuite.receive([9] + [UInt8](repeating: 0, count: 48)) }
    }
}
