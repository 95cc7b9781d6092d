import NIOCore
import Testing

@testable import SwarmKit

/// The session state machine on its own, and the whole stack with each cipher and with rekeys.
@Suite struct PeerSessionTests {
    static let info = NoiseHandshakeCompleted(
        remoteDeviceKey: Array(repeating: 7, count: 32), handshakeHash: Array(repeating: 1, count: 32),
        cipher: .chaChaPoly)

    @Test func helloFirstThenMessages() {
        var machine = PeerSessionStateMachine()
        machine.handshakeCompleted(Self.info)
        #expect(machine.receive(.keepAlive) == .drop)
        guard case .violation(let error) = machine.receive(.interested) else {
            Issue.record("a message before hello was accepted")
            return
        }
        #expect(error.reason == .helloRequired)

        var open = PeerSessionStateMachine()
        open.handshakeCompleted(Self.info)
        guard case .ready(let session) = open.receive(.hello(Hello(deviceKey: Self.info.remoteDeviceKey))) else {
            Issue.record("hello refused")
            return
        }
        #expect(session.remoteDeviceKey == Self.info.remoteDeviceKey)
        #expect(open.receive(.interested) == .forward(.interested))
        #expect(open.receive(.keepAlive) == .drop)
        #expect(open.receive(.goodbye(.normal)) == .goodbye(.normal))
        #expect(open.receive(.interested) == .drop)  // closing: nothing more reaches the application
    }

    @Test func helloWithAnotherKeyIsRefused() {
        var machine = PeerSessionStateMachine()
        machine.handshakeCompleted(Self.info)
        guard case .violation(let error) = machine.receive(.hello(Hello(deviceKey: Array(repeating: 8, count: 32))))
        else {
            Issue.record("a hello with another device key was accepted")
            return
        }
        #expect(error.reason == .deviceKeyMismatch)
    }

    @Test func announcementsFollowBitfieldAndHave() {
        var announced = AnnouncedChunks()
        #expect(!announced.contains(0))
        var bitfield = Bitfield(chunkCount: 10)
        bitfield.insert(3)
        announced.record(.bitfield(bitfield))
        announced.record(.have(chunk: 9))
        announced.record(.have(chunk: 500))
        #expect(announced.contains(3) && announced.contains(9) && announced.contains(500))
        #expect(!announced.contains(4) && !announced.contains(10))
    }

    @Test(arguments: NoiseCipher.allCases)
    func wholeStackWithEachCipherAndFrequentRekeys(_ cipher: NoiseCipher) throws {
        guard cipher.isAvailable else { return }
        let pair = try EmbeddedPair { configuration in
            configuration.cipher = cipher
            configuration.rekeyInterval = 5
            configuration.enforceAnnouncements = false
        }
        pair.pump()
        #expect(try pair.initiatorReady.wait().cipher == cipher)
        #expect(try pair.responderReady.wait().cipher == cipher)
        // Each flush is one frame here, so 40 messages cross 8 rekeys in each direction.
        for index in 0..<40 {
            try pair.initiator.writeOutbound(WireMessage.have(chunk: UInt32(index)))
            try pair.responder.writeOutbound(WireMessage.have(chunk: UInt32(index)))
            pair.pump()
        }
        let expected = (0..<40).map { WireMessage.have(chunk: UInt32($0)) }
        #expect(pair.received(on: pair.responder) == expected)
        #expect(pair.received(on: pair.initiator) == expected)
        #expect(pair.errors.isEmpty)
    }
}
