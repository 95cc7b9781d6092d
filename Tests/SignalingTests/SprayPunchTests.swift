import Foundation
import Testing

@testable import SignalingClient
@testable import SignalingProtocol
@testable import SignalingServer

/// Spray punches as the signaling server grants them and clients take them (docs/nat.md, "Spray punching").
@Suite("Spray punch coordination")
struct SprayPunchTests {
    /// A hub with members of one swarm, each a session handle made here: `spray[i]` says whether member i said
    /// `spray` in its hello, `observed[i]` where the server saw it.
    static func hub(
        _ count: Int, spray: [Bool]? = nil, observed: [String?]? = nil,
        addresses: [String] = ["10.0.0.2:41000", "reflexive@198.51.100.9:41000"]
    ) async throws -> (Hub, SwarmID, [SessionHandle]) {
        let hub = Hub(limits: SignalServerConfiguration(dataDirectory: "/nonexistent"))
        let swarm = Ed25519Signer().publicKey
        var handles: [SessionHandle] = []
        for index in 0..<count {
            let (_, continuation) = AsyncStream<Outgoing>.makeStream()
            let handle = SessionHandle(
                id: UInt64(index + 1), device: Ed25519Signer().publicKey, remoteAddress: "192.0.2.\(index + 1)",
                outbox: continuation, canPunch: true, canSpray: spray?[index] ?? true,
                observedHost: observed.map { $0[index] } ?? "198.51.100.\(index + 1)", binaryWriter: { _ in })
            await hub.register(handle)
            guard case .success = await hub.join(handle, swarm: swarm, addresses: addresses)
            else {
                Issue.record("join refused")
                throw CancellationError()
            }
            handles.append(handle)
        }
        return (hub, swarm, handles)
    }

    @Test("the symmetric requester opens; the other end probes the requester's address as the server saw it")
    func roles() async throws {
        let (hub, swarm, members) = try await Self.hub(2)
        guard
            case .success(let granted) = await hub.punch(
                members[0], swarm: swarm, peer: members[1].device, spray: true, now: .now)
        else {
            Issue.record("spray punch refused")
            return
        }
        #expect(granted.toRequester.spray == .init(role: .open))
        #expect(granted.toTarget.spray == .init(role: .probe, host: "198.51.100.1"))
        #expect(granted.target === members[1])
        #expect(granted.toRequester.peer.device == members[1].device)
        // A plain punch carries no spray.
        let (plainHub, plainSwarm, plain) = try await Self.hub(2)
        guard
            case .success(let punch) = await plainHub.punch(
                plain[0], swarm: plainSwarm, peer: plain[1].device, now: .now)
        else {
            Issue.record("punch refused")
            return
        }
        #expect(punch.toRequester.spray == nil && punch.toTarget.spray == nil)
    }

    @Test("over a server: both ends are told their part, the prober the requester's address as the server saw it")
    func overAServer() async throws {
        let configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        try await withServer(configuration) { _, url, port in
            try await withTwoMembers(url: url, bReflexivePort: 41001) { swarm, a, b, _ in
                await a.client.requestPunch(swarm: swarm.publicKey, peer: b.device.publicKey, spray: true)
                try await a.log.wait("a is told to open") { $0.punch?.spray == .open }
                try await b.log.wait("b is told to probe") { $0.punch?.spray == .probe(host: "127.0.0.1") }
                let text = try await httpGet(port: port, path: "/metrics")
                #expect(text.contains("harp_signal_spray_punches_total 1"))
                #expect(text.contains("harp_signal_punch_attempts_total 1"))
            }
        }
    }

    @Test(
        "a spray punch is refused when either end did not say spray, or the requester was seen at no IPv4 address",
        arguments: [
            ([true, false], ["198.51.100.1", "198.51.100.2"]),
            ([false, true], ["198.51.100.1", "198.51.100.2"]),
            ([true, true], ["2001:db8::1", "198.51.100.2"]),
            ([true, true], [nil, "198.51.100.2"]),
            ([true, true], ["198.51.100.01", "198.51.100.2"]),
            // Addresses the probing end would refuse (`isSprayTarget`): never granted.
            ([true, true], ["169.254.1.1", "198.51.100.2"]),
            ([true, true], ["127.0.0.1", "198.51.100.2"]),
            ([true, true], ["224.0.0.1", "198.51.100.2"]),
        ] as [([Bool], [String?])])
    func refused(spray: [Bool], observed: [String?]) async throws {
        let (hub, swarm, members) = try await Self.hub(2, spray: spray, observed: observed)
        let result = await hub.punch(members[0], swarm: swarm, peer: members[1].device, spray: true, now: .now)
        guard case .failure(let code) = result else {
            Issue.record("spray punch granted")
            return
        }
        #expect(code == .cannotPunch)
    }

    @Test(
        "a spray punch towards a peer that announced no IPv4 reflexive candidate is refused; a plain punch is not",
        arguments: [
            ["10.0.0.2:41000", "mapped@198.51.100.9:5000"], ["reflexive@[2001:db8::9]:41000"],
            ["10.0.0.2:41000", "reflexives@198.51.100.9:41000"],
        ])
    func noReflexiveCandidate(addresses: [String]) async throws {
        let (hub, swarm, members) = try await Self.hub(2, addresses: addresses)
        guard
            case .failure(.cannotPunch) = await hub.punch(
                members[0], swarm: swarm, peer: members[1].device, spray: true, now: .now)
        else {
            Issue.record("spray punch granted")
            return
        }
        guard case .success = await hub.punch(members[0], swarm: swarm, peer: members[1].device, now: .now) else {
            Issue.record("plain punch refused")
            return
        }
    }

    @Test("one requester is granted at most sixteen spray punches in ten seconds, whoever the peers are")
    func perRequesterLimit() async throws {
        let limit = Hub.maxSpraysPerWindow
        let (hub, swarm, members) = try await Self.hub(limit + 3)
        let start = ContinuousClock.now
        var granted = 0
        for peer in members[1...(limit + 1)] {
            if case .success = await hub.punch(members[0], swarm: swarm, peer: peer.device, spray: true, now: start) {
                granted += 1
            }
        }
        #expect(granted == limit)
        // A plain punch is not counted against it; another requester has its own budget.
        if case .failure = await hub.punch(members[0], swarm: swarm, peer: members[limit + 2].device, now: start) {
            Issue.record("a plain punch refused")
        }
        if case .failure = await hub.punch(members[1], swarm: swarm, peer: members[2].device, spray: true, now: start) {
            Issue.record("another requester refused")
        }
        // After the window the requester is granted again (its pair with the last of them was refused, so never
        // punched).
        let later = start + Hub.sprayWindow
        let last = members[limit + 1].device
        if case .failure = await hub.punch(members[0], swarm: swarm, peer: last, spray: true, now: later) {
            Issue.record("refused after the window")
        }
    }

    @Test("a client probes for at most four spray punches in ten seconds, whatever the server asks")
    func clientProbeLimit() async {
        let client = SignalClient(
            configuration: .init(url: "ws://127.0.0.1:1/v1/ws"), device: Ed25519Signer(), logger: .init(label: "t"))
        let start = ContinuousClock.now
        var accepted = 0
        for step in 0..<6 where await client.acceptSprayProbe(now: start + .milliseconds(step)) { accepted += 1 }
        #expect(accepted == SignalClient.maxSprayProbes)
        #expect(await client.acceptSprayProbe(now: start + SignalClient.sprayProbeWindow))
        #expect(!(await client.acceptSprayProbe(now: start + SignalClient.sprayProbeWindow)))
    }

    @Test("a punch's spray part and the request's flag travel as JSON; messages without them still decode")
    func coding() throws {
        let device = Ed25519Signer().publicKey
        let swarm = Ed25519Signer().publicKey
        for message in [
            Message.punch(
                .init(
                    id: 3, swarm: swarm, peer: PeerInfo(device: device, addresses: []), delayMs: 20,
                    spray: .init(role: .probe, host: "198.51.100.7"))),
            .punch(.init(id: 3, swarm: swarm, peer: PeerInfo(device: device, addresses: []), delayMs: 20)),
            .punchRequest(.init(id: 9, swarm: swarm, peer: device, spray: true)),
            .punchRequest(.init(id: 9, swarm: swarm, peer: device)),
        ] {
            let text = MessageCodec.encode(message)
            #expect(try MessageCodec.decode(text, maxBytes: 4096) == message)
            #expect(text.contains("spray") == (text.contains("198.51.100.7") || text.contains("\"spray\":true")))
        }
        // An unknown role is not a message.
        let hostile = MessageCodec.encode(
            .punch(
                .init(
                    id: 3, swarm: swarm, peer: PeerInfo(device: device, addresses: []), delayMs: 20,
                    spray: .init(role: .open)))
        ).replacingOccurrences(of: "\"open\"", with: "\"scan\"")
        #expect(throws: (any Error).self) { try MessageCodec.decode(hostile, maxBytes: 4096) }
    }

    @Test(
        "IPv4 literals: dotted quads only",
        arguments: [
            ("198.51.100.7", true), ("0.0.0.0", true), ("255.255.255.255", true), ("256.1.1.1", false),
            ("1.2.3", false), ("1.2.3.4.5", false), ("01.2.3.4", false), ("1.2.3.-4", false), ("1..3.4", false),
            ("::1", false), ("example.org", false), ("1.2.3.4 ", false), ("", false), ("1.2.3.4:80", false),
            ("١.2.3.4", false),
        ])
    func ipv4Literals(text: String, valid: Bool) {
        #expect(IPv4Literal.isValid(text) == valid)
    }

    @Test(
        "a spray punch dials only an address that can be a NAT's public side; loopback only with a server on loopback",
        arguments: [
            ("198.51.100.7", true, true), ("10.0.0.1", true, true), ("100.64.1.2", true, true),
            ("127.0.0.1", false, false), ("127.0.0.1", true, true), ("127.8.9.1", false, false),
            ("0.0.0.0", false, false), ("0.1.2.3", true, false), ("169.254.1.1", false, false),
            ("224.0.0.1", false, false), ("239.1.1.1", false, false), ("240.0.0.1", false, false),
            ("255.255.255.255", true, false), ("::1", true, false), ("example.org", false, false),
        ])
    func sprayTargets(text: String, loopbackServer: Bool, allowed: Bool) {
        #expect(IPv4Literal.isSprayTarget(text, loopbackServer: loopbackServer) == allowed)
    }
}
