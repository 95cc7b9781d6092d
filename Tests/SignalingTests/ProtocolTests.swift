import Crypto
import Testing

@testable import SignalingClient
@testable import SignalingProtocol
@testable import SignalingServer

@Suite("Protocol values")
struct ProtocolTests {
    @Test("every message survives a JSON round trip and names its type")
    func codecRoundTrip() throws {
        let key = Ed25519Signer().publicKey
        let messages: [Message] = [
            .challenge(.init(version: 1, nonce: HexBytes([UInt8](repeating: 9, count: 32)))),
            .hello(.init(version: 1, device: key, signature: HexBytes([1, 2]), joinProof: HexBytes([3]))),
            .welcome(.init(device: key)),
            .join(
                .init(id: 7, swarm: key, signature: HexBytes([4]), addresses: ["192.0.2.1:7448", "[2001:db8::1]:7448"])),
            .joined(.init(id: 7, swarm: key, peers: [PeerInfo(device: key, addresses: [])])),
            .peerJoined(.init(swarm: key, peer: PeerInfo(device: key, addresses: ["h:1"]))),
            .peerLeft(.init(swarm: key, device: key)),
            .leave(.init(swarm: key)),
            .relayOpen(.init(id: 8, swarm: key, peer: key)),
            .relayOpened(.init(id: 8, stream: 3)),
            .relayIncoming(.init(stream: 3, swarm: key, peer: key)),
            .relayClose(.init(stream: 3)),
            .relayClosed(.init(stream: 3)),
            .error(.init(id: nil, code: .banned, message: "m", retryAfter: 12.5)),
        ]
        for message in messages {
            let text = MessageCodec.encode(message)
            #expect(text.contains(#""type":"\#(message.type)""#))
            #expect(try MessageCodec.decode(text, maxBytes: 4096) == message)
        }
    }

    @Test(
        "malformed keys, unknown types and oversized text are refused",
        arguments: [
            #"{"type":"welcome","device":"zz"}"#,
            #"{"type":"welcome","device":"00"}"#,
            #"{"type":"nope"}"#,
            #"{"device":"00"}"#,
            #"[1,2,3]"#,
            "",
        ])
    func malformed(_ text: String) {
        #expect(throws: MessageCodec.DecodeError.malformed) { try MessageCodec.decode(text, maxBytes: 4096) }
    }

    @Test("the size cap is checked before parsing")
    func sizeCap() {
        #expect(throws: MessageCodec.DecodeError.tooLarge) {
            try MessageCodec.decode(String(repeating: "x", count: 100), maxBytes: 99)
        }
    }

    @Test("a hello signature is not a join signature (domain separation)")
    func domainSeparation() throws {
        let device = Ed25519Signer()
        let nonce = [UInt8](repeating: 1, count: 32)
        let hello = Proofs.helloMessage(nonce: nonce, device: device.publicKey)
        let join = Proofs.joinMessage(nonce: nonce, device: device.publicKey, swarm: device.publicKey)
        let signature = try device.sign(hello)
        #expect(Proofs.verify(signature: signature, of: hello, by: device.publicKey))
        #expect(!Proofs.verify(signature: signature, of: join, by: device.publicKey))
        #expect(!Proofs.verify(signature: [UInt8](repeating: 0, count: 64), of: hello, by: device.publicKey))
        #expect(!Proofs.verify(signature: Array(signature.prefix(10)), of: hello, by: device.publicKey))
        let key = Array("k".utf8)
        let proof = Proofs.joinKeyProof(joinKey: key, nonce: nonce, device: device.publicKey)
        #expect(Proofs.checkJoinKeyProof(proof, joinKey: key, nonce: nonce, device: device.publicKey))
        #expect(!Proofs.checkJoinKeyProof(proof, joinKey: Array("K".utf8), nonce: nonce, device: device.publicKey))
    }

    @Test("the session state machine admits only the proven device, once")
    func stateMachine() throws {
        let nonce = [UInt8](repeating: 5, count: 32)
        var configuration = SignalServerConfiguration(dataDirectory: "/nonexistent")
        configuration.joinKey = Array("org".utf8)
        var machine = SessionStateMachine(nonce: nonce, configuration: configuration)
        let device = Ed25519Signer()
        let signature = try device.sign(Proofs.helloMessage(nonce: nonce, device: device.publicKey))
        let noProof = Message.Hello(
            version: 1, device: device.publicKey, signature: HexBytes(signature), joinProof: nil)
        let (_, continuation) = AsyncStream<Outgoing>.makeStream()
        let makeHandle = { (device: DeviceID) in
            SessionHandle(id: 1, device: device, remoteAddress: "x", outbox: continuation, binaryWriter: { _ in })
        }
        // Nothing but `open` is accepted first, and `open` only once.
        guard case .protocolViolation = machine.hello(noProof, makeHandle: makeHandle) else {
            Issue.record("hello accepted before open")
            return
        }
        var otherVersion = machine
        guard case .refuse(.unsupportedVersion) = otherVersion.open(.init(version: 2)) else {
            Issue.record("open of another version accepted")
            return
        }
        guard case .challenge(let challengeNonce) = machine.open(.init(version: 1)) else {
            Issue.record("open refused")
            return
        }
        #expect(challengeNonce == nonce)
        guard case .protocolViolation = machine.open(.init(version: 1)) else {
            Issue.record("second open accepted")
            return
        }
        guard case .refuse(.badJoinKey) = machine.hello(noProof, makeHandle: makeHandle) else {
            Issue.record("hello without join key accepted")
            return
        }
        var withProof = noProof
        withProof.joinProof = HexBytes(
            Proofs.joinKeyProof(joinKey: Array("org".utf8), nonce: nonce, device: device.publicKey))
        var oldVersion = withProof
        oldVersion.version = 0
        guard case .refuse(.unsupportedVersion) = machine.hello(oldVersion, makeHandle: makeHandle) else {
            Issue.record("version")
            return
        }
        var expired = machine
        let expiredAction = expired.deadline()
        #expect(expiredAction == .close)
        guard case .protocolViolation = expired.hello(withProof, makeHandle: makeHandle) else {
            Issue.record("hello accepted after the deadline closed the session")
            return
        }
        guard case .accept(let handle) = machine.hello(withProof, makeHandle: makeHandle) else {
            Issue.record("good hello refused")
            return
        }
        let accepted = handle.device
        #expect(accepted == device.publicKey)
        let laterAction = machine.deadline()
        #expect(laterAction == .none)
        guard case .protocolViolation = machine.hello(withProof, makeHandle: makeHandle) else {
            Issue.record("second hello"); return
        }
        let swarm = Ed25519Signer()
        let joinSignature = try swarm.sign(Proofs.joinMessage(nonce: nonce, device: accepted, swarm: swarm.publicKey))
        let join = Message.Join(id: 1, swarm: swarm.publicKey, signature: HexBytes(joinSignature), addresses: ["a:1"])
        guard case .accept = machine.join(join) else { Issue.record("good join refused"); return }
        var tooMany = join
        tooMany.addresses = Array(repeating: "a:1", count: 17)
        guard case .refuse(.badAddresses, countsAsFailure: false) = machine.join(tooMany) else {
            Issue.record("addresses"); return
        }
        var forged = join
        forged.swarm = Ed25519Signer().publicKey
        guard case .refuse(.badSwarmProof, countsAsFailure: true) = machine.join(forged) else {
            Issue.record("forged join"); return
        }
    }

    @Test("token buckets allow the burst, then charge time")
    func tokenBucket() {
        let start = ContinuousClock.now
        var bucket = TokenBucket(rate: 1000, burst: 500, now: start)
        let withinBurst = bucket.take(500, now: start)
        let beyond = bucket.take(1000, now: start)
        #expect(withinBurst == .zero)
        #expect(beyond == .seconds(1))
        var messages = TokenBucket(rate: 1, burst: 2, now: start)
        let first = messages.tryTake(now: start)
        let second = messages.tryTake(now: start)
        let third = messages.tryTake(now: start)
        let later = messages.tryTake(now: start + .seconds(1))
        #expect(first && second && !third && later)
    }

    @Test("backoff is jittered, grows, and is capped")
    func backoff() {
        for attempt in 0..<30 {
            let delay = SignalClient.backoff(attempt: attempt, initial: .milliseconds(100), max: .seconds(5))
            let ceiling = min(5.0, 0.1 * Double(1 << min(attempt, 20)))
            #expect(delay.seconds >= ceiling / 2 - 1e-9 && delay.seconds <= ceiling + 1e-9)
        }
    }
}
