import NIOCore
import NIOEmbedded
import Testing

@testable import SwarmKit

/// The whole handler stack on embedded channels: handshake, hello, messages, and every way a peer can
/// break the protocol.
@Suite struct PeerPipelineTests {
    @Test func handshakeHelloAndMessages() throws {
        let pair = try EmbeddedPair()
        pair.pump()
        let a = try pair.initiatorReady.wait()
        let b = try pair.responderReady.wait()
        #expect(a.remoteDeviceKey == pair.responderIdentity.publicKey)
        #expect(b.remoteDeviceKey == pair.initiatorIdentity.publicKey)
        #expect(a.handshakeHash == b.handshakeHash)

        var bitfield = Bitfield(chunkCount: 4)
        bitfield.insert(2)
        try pair.responder.writeOutbound(WireMessage.bitfield(bitfield))
        pair.pump()
        #expect(pair.received(on: pair.initiator) == [.bitfield(bitfield)])
        let big = ByteBuffer(bytes: (0..<Int(WireLimits.maxBlockLength)).map { UInt8(truncatingIfNeeded: $0) })
        try pair.initiator.writeOutbound(
            WireMessage.request(BlockRequest(chunk: 2, offset: 0, length: WireLimits.maxBlockLength)))
        pair.pump()
        #expect(
            pair.received(on: pair.responder) == [
                .request(BlockRequest(chunk: 2, offset: 0, length: WireLimits.maxBlockLength))
            ])
        try pair.responder.writeOutbound(WireMessage.piece(Piece(chunk: 2, offset: 0, data: big)))
        try pair.responder.writeOutbound(WireMessage.have(chunk: 3))
        pair.pump()
        #expect(pair.received(on: pair.initiator) == [.piece(Piece(chunk: 2, offset: 0, data: big)), .have(chunk: 3)])
        try pair.initiator.writeOutbound(WireMessage.goodbye(.normal))
        pair.pump()
        #expect(pair.received(on: pair.responder) == [.goodbye(.normal)])
        #expect(!pair.initiator.isActive && !pair.responder.isActive)
    }

    @Test func differentSwarmKeyFailsBothSides() throws {
        let pair = try EmbeddedPair(initiatorKey: PeerHandshakeTests.keyA, responderKey: PeerHandshakeTests.keyB)
        pair.pump()
        #expect(throws: NoiseError.decryptionFailed) { try pair.responderReady.wait() }
        // The initiator never gets a hello; over TCP it would see the close, here its deadline ends it.
        pair.initiator.embeddedEventLoop.advanceTime(by: .seconds(11))
        #expect(throws: PeerConnectionError.self) { try pair.initiatorReady.wait() }
        #expect(!pair.responder.isActive && !pair.initiator.isActive)
    }

    static func violation(_ act: (EmbeddedPair) throws -> Void) throws -> (EmbeddedPair, [WireMessage]) {
        let pair = try EmbeddedPair()
        pair.pump()
        _ = try pair.responderReady.wait()
        try act(pair)
        pair.pump()
        return (pair, pair.received(on: pair.initiator))
    }

    @Test func requestForUnannouncedChunkSaysGoodbye() throws {
        let (pair, seen) = try Self.violation { pair in
            try pair.responder.writeOutbound(WireMessage.have(chunk: 1))
            try pair.initiator.writeOutbound(WireMessage.request(BlockRequest(chunk: 1, offset: 0, length: 10)))
            try pair.initiator.writeOutbound(WireMessage.request(BlockRequest(chunk: 2, offset: 0, length: 10)))
        }
        #expect(seen == [.have(chunk: 1), .goodbye(.chunkNotAnnounced)])
        #expect(!pair.responder.isActive)
    }

    @Test func violationIsLoggedWithReasonAndWithoutSecrets() throws {
        let capture = LogCapture()
        let pair = try EmbeddedPair { $0.logger = capture.logger() }
        pair.pump()
        _ = try pair.responderReady.wait()
        try pair.initiator.writeOutbound(WireMessage.request(BlockRequest(chunk: 9, offset: 0, length: 1)))
        pair.pump()
        let violations = capture.records.filter { $0.message == "peer protocol violation" }
        #expect(violations.count == 1)
        #expect(violations.first?.level == .warning)
        #expect(violations.first?.metadata["goodbye.reason"] == "chunk-not-announced")
        #expect(violations.first?.metadata["peer.fingerprint"] == pair.initiatorIdentity.fingerprint)
        let keyHex = Hex.encode(PeerHandshakeTests.keyA.bytes)
        for record in capture.records {
            #expect(!record.message.contains(keyHex) && !record.metadata.values.contains { $0.contains(keyHex) })
        }
    }

    @Test func tamperedTransportFrameSaysGoodbye() throws {
        let pair = try EmbeddedPair()
        pair.pump()
        _ = try pair.responderReady.wait()
        try pair.initiator.writeOutbound(WireMessage.interested)
        pair.pump { bytes in bytes.setInteger(bytes.getInteger(at: 5, as: UInt8.self)! ^ 1, at: 5) }
        #expect(pair.received(on: pair.responder) == [])
        #expect(pair.received(on: pair.initiator) == [.goodbye(.decryptionFailed)])
        #expect(!pair.responder.isActive)
    }

    @Test(arguments: [
        ([0xFF, 0xFF, 0xFF, 0xF0] as [UInt8], GoodbyeReason.oversized),
        ([0, 0, 0, 2, 1, 0x55], .unknownMessage),
        ([0, 0, 0, 2, 9, 0x03], .unsupportedVersion),
        ([0, 0, 0, 3, 1, 0x08, 0], .malformedMessage),
        ([0, 0, 0, 46, 1, 0x01, 0, 1] + [UInt8](repeating: 0, count: 8 + 32 + 2), .malformedMessage),  // a second hello
    ])
    func badPlaintextSaysGoodbye(_ bytes: [UInt8], _ reason: GoodbyeReason) throws {
        let (pair, seen) = try Self.violation { pair in
            try pair.sendRawPlaintext(ByteBuffer(bytes: bytes), from: pair.initiator)
        }
        #expect(seen.count == 1)
        if case .goodbye(let got) = seen.first {
            #expect(got == reason)
        } else {
            Issue.record("no goodbye: \(seen)")
        }
        #expect(!pair.responder.isActive)
    }

    @Test func idlePeerIsDroppedAndQuietSideSendsKeepAlives() throws {
        let pair = try EmbeddedPair { config in
            config.idleTimeout = .seconds(60)
            config.keepAliveInterval = .seconds(20)
        }
        pair.pump()
        _ = try pair.responderReady.wait()
        pair.responder.embeddedEventLoop.advanceTime(by: .seconds(21))
        let keepAlive = try #require(try pair.responder.readOutbound(as: ByteBuffer.self))
        #expect(keepAlive.readableBytes == 2 + 6 + 16)  // frame length, u32+version+type, tag
        try pair.initiator.writeInbound(keepAlive)
        #expect(pair.received(on: pair.initiator) == [])  // keep-alives never reach the application
        pair.responder.embeddedEventLoop.advanceTime(by: .seconds(40))
        pair.pump()
        #expect(pair.errors.isEmpty)
        #expect(pair.received(on: pair.initiator) == [.goodbye(.idleTimeout)])
        #expect(!pair.responder.isActive)
    }

    @Test func handshakeTimeoutCloses() throws {
        let pair = try EmbeddedPair()
        // Never pump: the responder waits for message 1 until its deadline.
        pair.responder.embeddedEventLoop.advanceTime(by: .seconds(11))
        #expect(!pair.responder.isActive)
        #expect(throws: (any Error).self) { try pair.responderReady.wait() }
    }

    @Test func randomGarbageClosesWithoutACrash() throws {
        var rng = SplitMix64(seed: 42)
        for round in 0..<300 {
            let pair = try EmbeddedPair()
            if round % 2 == 1 { pair.pump() }  // half before, half after the handshake
            for _ in 0..<Int(rng.next() % 8 + 1) {
                let count = Int(rng.next() % 300)
                let bytes = ByteBuffer(bytes: (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
                if pair.responder.isActive { _ = try? pair.responder.writeInbound(bytes) }
            }
            pair.responder.embeddedEventLoop.advanceTime(by: .seconds(200))
            #expect(!pair.responder.isActive)
        }
    }
}

/// A tiny seeded generator so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
