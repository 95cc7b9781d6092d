import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import SignalingClient
@testable import SignalingProtocol
@testable import SignalingServer

/// Candidates (docs/nat.md): the text peers announce, the reflexive address the server reports, and the join that
/// carries both.
@Suite("NAT candidates")
struct CandidateTests {
    @Test(
        "announced texts parse to their kind, host and port",
        arguments: [
            ("10.1.0.2:41000", Candidate(kind: .local, host: "10.1.0.2", port: 41000)),
            ("reflexive@203.0.113.7:41000", Candidate(kind: .reflexive, host: "203.0.113.7", port: 41000)),
            ("mapped@[2001:db8::7]:5", Candidate(kind: .mapped, host: "2001:db8::7", port: 5)),
            ("[::1]:65535", Candidate(kind: .local, host: "::1", port: 65535)),
            ("relayish@192.0.2.1:9", Candidate(kind: Candidate.Kind(rawValue: "relayish"), host: "192.0.2.1", port: 9)),
        ])
    func parses(text: String, expected: Candidate) {
        #expect(Candidate(text: text) == expected)
        #expect(Candidate(text: text)?.text == text)
    }

    @Test(
        "hostile or malformed texts are refused",
        arguments: [
            "", "10.1.0.2", "10.1.0.2:0", "10.1.0.2:65536", "10.1.0.2:-1", ":41000", "@10.1.0.2:1", "Mapped@10.1.0.2:1",
            "map ped@10.1.0.2:1", "abcdefghijklmnopq@10.1.0.2:1", "2001:db8::7:41000", "[2001:db8::7:41000",
            "[]:1", "10.1.0.2/8:1", "host name:1", "a@b@10.1.0.2:1", String(repeating: "1", count: 79) + ":1",
        ])
    func refuses(text: String) {
        #expect(Candidate(text: text) == nil)
    }

    @Test("a local candidate is written plainly, as older peers announce and parse it")
    func localIsPlain() {
        #expect(Candidate(kind: .local, host: "10.0.0.1", port: 7).text == "10.0.0.1:7")
        #expect(Candidate(kind: .mapped, host: "10.0.0.1", port: 7).text == "mapped@10.0.0.1:7")
    }

    @Test("the observed address a server sends is checked before use")
    func observedIsChecked() {
        #expect(
            ObservedAddress(address: "203.0.113.9", port: 5000) == ObservedAddress(address: "203.0.113.9", port: 5000))
        #expect(ObservedAddress(address: "2001:db8::1", port: nil)?.port == nil)
        #expect(ObservedAddress(address: nil, port: 5000) == nil)
        #expect(ObservedAddress(address: "", port: 5000) == nil)
        #expect(ObservedAddress(address: "example.org", port: 5000) == nil)
        #expect(ObservedAddress(address: "203.0.113.9", port: 0) == nil)
        #expect(ObservedAddress(address: "203.0.113.9", port: 70000) == nil)
        #expect(ObservedAddress(address: String(repeating: "1", count: 65), port: 1) == nil)
    }

    @Test("welcome decodes with and without the observed address (older servers send none)")
    func welcomeIsCompatible() throws {
        let device = Ed25519Signer().publicKey
        let old = try MessageCodec.decode(#"{"type":"welcome","device":"\#(device.hex)"}"#, maxBytes: 4096)
        #expect(old == .welcome(.init(device: device)))
        let new = Message.welcome(.init(device: device, observedAddress: "198.51.100.4", observedPort: 6123))
        let text = MessageCodec.encode(new)
        #expect(try MessageCodec.decode(text, maxBytes: 4096) == new)
        if case .welcome(let welcome) = new {
            #expect(welcome.observed == ObservedAddress(address: "198.51.100.4", port: 6123))
        }
        // The second observation port is a port the client will connect to: anything outside 1...65535 is ignored.
        for (port, usable) in [(7001, 7001), (65535, 65535), (0, nil), (-1, nil), (65536, nil), (Int.max, nil)] {
            let text = #"{"type":"welcome","device":"\#(device.hex)","probePort":\#(port)}"#
            guard case .welcome(let welcome) = try MessageCodec.decode(text, maxBytes: 4096) else {
                Issue.record("not a welcome: \(text)")
                continue
            }
            #expect(welcome.validProbePort == usable, "\(port)")
        }
    }

    @Test("the server reports an IPv4-mapped peer as IPv4, and a forwarded client's whole address without port")
    func serverSideObservation() throws {
        let mapped = try SocketAddress(ipAddress: "::ffff:203.0.113.9", port: 4242)
        #expect(ClientAddress.observed(mapped, port: true) == ObservedAddress(address: "203.0.113.9", port: 4242))
        let v6 = try SocketAddress(ipAddress: "2001:db8:1:2::9", port: 4242)
        #expect(ClientAddress.observed(v6, port: false) == ObservedAddress(address: "2001:db8:1:2::9", port: nil))
        let forwarded = ConnectionGuardHandler.forwardedAddress(
            ["198.51.100.66, 2001:db8:1:2::9, 10.0.0.1"], trusted: ["10.0.0.1"])
        #expect(forwarded == ObservedAddress(address: "2001:db8:1:2::9", port: nil))
        #expect(ConnectionGuardHandler.forwardedAddress(["not an address"], trusted: []) == nil)
    }

    @Test("a join announces a reflexive candidate unless an address with that host is there already")
    func announcedAddresses() {
        let signer = Ed25519Signer()
        let observed = ObservedAddress(address: "203.0.113.9", port: 5555)
        var membership = SignalClient.Membership(signer: signer, addresses: ["10.0.0.7:41000"], reflexivePort: 41000)
        #expect(
            SignalClient.announced(membership, observed: observed) == ["10.0.0.7:41000", "reflexive@203.0.113.9:41000"])
        #expect(SignalClient.announced(membership, observed: nil) == ["10.0.0.7:41000"])
        membership.addresses = ["203.0.113.9:41000"]
        #expect(SignalClient.announced(membership, observed: observed) == ["203.0.113.9:41000"])
        membership.reflexivePort = nil
        membership.addresses = ["10.0.0.7:41000"]
        #expect(SignalClient.announced(membership, observed: observed) == ["10.0.0.7:41000"])
        membership.reflexivePort = 41000
        membership.addresses = (0..<20).map { "10.0.0.\($0):1" }
        #expect(SignalClient.announced(membership, observed: observed).count == SignalClient.maxAnnounced)
        membership.addresses = ["10.0.0.7:41000"]
        let loopback = ObservedAddress(address: "127.0.0.1", port: 5555)
        #expect(SignalClient.announced(membership, observed: loopback) == ["10.0.0.7:41000"])
        #expect(
            SignalClient.announced(membership, observed: loopback, loopback: true)
                == ["10.0.0.7:41000", "reflexive@127.0.0.1:41000"])
    }

    @Test("the listening port's mapping replaces the port of the reflexive candidate when it names the same address")
    func announcedWithTheListeningPortsMapping() {
        let observed = ObservedAddress(address: "203.0.113.9", port: 5555)
        let membership = SignalClient.Membership(
            signer: Ed25519Signer(), addresses: ["10.0.0.7:41000"], reflexivePort: 41000)
        let changed = ObservedAddress(address: "203.0.113.9", port: 51000)
        #expect(
            SignalClient.announced(membership, observed: observed, mapping: changed)
                == ["10.0.0.7:41000", "reflexive@203.0.113.9:51000"])
        // Another address (a NAT with a pool of addresses), or no port (a proxy): the listening port, as before.
        for other in [
            ObservedAddress(address: "203.0.113.10", port: 51000), ObservedAddress(address: "203.0.113.9", port: nil),
        ] {
            #expect(
                SignalClient.announced(membership, observed: observed, mapping: other)
                    == ["10.0.0.7:41000", "reflexive@203.0.113.9:41000"])
        }
    }

    @Test("the probe's answer is read only from a whole 200 response with an address and a port")
    func probeAnswers() throws {
        func response(_ status: String, _ headers: [String], _ body: String) -> [UInt8] {
            Array((["HTTP/1.1 \(status)"] + headers + ["", body]).joined(separator: "\r\n").utf8)
        }
        let body = #"{"address":"198.51.100.4","port":51000}"#
        let good = response("200 OK", ["content-type: application/json", "content-length: \(body.utf8.count)"], body)
        #expect(try ReflexiveProbe.parse(good) == ObservedAddress(address: "198.51.100.4", port: 51000))
        // Without a length the body runs to the end.
        #expect(try ReflexiveProbe.parse(response("200 OK", [], body)).port == 51000)
        #expect(throws: ReflexiveProbe.Failure.status(404)) {
            try ReflexiveProbe.parse(response("404 Not Found", ["content-length: 0"], ""))
        }
        let refused: [[UInt8]] = [
            response("200 OK", ["content-length: 9999"], body),
            response("200 OK", ["transfer-encoding: chunked"], body),
            response("200 OK", [], #"{"address":"198.51.100.4"}"#),
            response("200 OK", [], #"{"address":"not an address!","port":1}"#),
            response("200 OK", [], #"{"address":"198.51.100.4","port":0}"#),
            response("200 OK", [], #"{"address":"198.51.100.4","port":70000}"#),
            Array("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n".utf8),
            Array("garbage\r\n\r\n{}".utf8),
        ]
        for bytes in refused {
            #expect(throws: ReflexiveProbe.Failure.malformed) { try ReflexiveProbe.parse(bytes) }
        }
    }

    @Test("over loopback, a probe from the listening port is answered with that port, and the route is rate limited")
    func probeOverLoopback() async throws {
        var configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        // Three requests, then none for a quarter of an hour: the refusal does not depend on how fast they come.
        configuration.observedRequestsPerSecondPerAddress = 0.001
        configuration.observedRequestBurst = 3
        try await withServer(configuration) { _, url, _ in
            // A listener holds the port with SO_REUSEPORT, as a node's does: the probe shares it.
            let listener = try await Self.listeningPort(host: "127.0.0.1")
            defer { listener.close(promise: nil) }
            let port = try #require(listener.localAddress?.port)
            let observed = try await ReflexiveProbe.observe(url: url, localPort: port, tls: nil)
            #expect(observed == ObservedAddress(address: "127.0.0.1", port: UInt16(port)))
            var answers: [Bool] = []
            for _ in 0..<3 {
                do {
                    _ = try await ReflexiveProbe.observe(url: url, localPort: 0, tls: nil)
                    answers.append(true)
                } catch ReflexiveProbe.Failure.status(429) {
                    answers.append(false)
                }
            }
            #expect(answers == [true, true, false])
        }
    }

    @Test("a client whose NAT changes its listening port's number announces the port the server saw")
    func aChangedPortIsAnnouncedAgain() async throws {
        let configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        // The listening port, held as a node holds it (SO_REUSEPORT): the client's probe shares it.
        let listener = try await Self.listeningPort(host: "127.0.0.1")
        defer { listener.close(promise: nil) }
        let port = try #require(listener.localAddress?.port.flatMap { UInt16(exactly: $0) })
        try await withServer(configuration) { _, url, _ in
            try await withTwoMembers(url: url, aReflexivePort: port) { _, a, b, _ in
                // The client's own probe, over loopback, sees the listening port unchanged.
                await a.client.probing?.value
                #expect(await a.client.listenPortMapping == ObservedAddress(address: "127.0.0.1", port: port))
                // What a probe from behind such a NAT answers (over loopback the port cannot change).
                let welcome = await a.client.welcomes
                await a.client.probed(
                    ObservedAddress(address: "127.0.0.1", port: 52000), listenPort: port, welcome: welcome)
                #expect(await a.client.listenPortMapping?.port == 52000)
                try await b.log.wait("b hears a's reflexive candidate with the mapped port") { event in
                    if case .peerJoined(_, let peer) = event {
                        peer.addresses == ["10.9.9.1:41000", "reflexive@127.0.0.1:52000"]
                    } else {
                        false
                    }
                }
                // An answer for an earlier connection, or naming another address, changes nothing.
                await a.client.probed(
                    ObservedAddress(address: "127.0.0.1", port: 53000), listenPort: port, welcome: welcome - 1)
                await a.client.probed(
                    ObservedAddress(address: "192.0.2.1", port: 53000), listenPort: port, welcome: welcome)
                #expect(await a.client.listenPortMapping?.port == 52000)
            }
        }
    }

    @Test("a second observation that sees another port means a symmetric NAT: the reflexive candidate is left out")
    func aSymmetricNATIsToldAndAnnouncesNoReflexiveCandidate() async throws {
        let configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        try await withServer(configuration) { _, url, _ in
            try await withTwoMembers(url: url) { _, a, b, _ in
                await a.client.probing?.value
                let welcome = await a.client.welcomes
                // Both observations name one port: endpoint-independent, the candidate stays.
                let seen = ObservedAddress(address: "127.0.0.1", port: 41000)
                await a.client.probed(seen, second: seen, listenPort: 41000, welcome: welcome)
                #expect(await a.client.natMapping == .endpointIndependent)
                // Two ports: symmetric; a joins again without its reflexive candidate, and b hears so.
                await a.client.probed(
                    ObservedAddress(address: "127.0.0.1", port: 61000),
                    second: ObservedAddress(
                        address: "127.0.0.1", port: 62000), listenPort: 41000, welcome: welcome)
                #expect(await a.client.natMapping == .dependent(ports: [61000, 62000]))
                try await b.log.wait("b hears a's addresses without the reflexive candidate") { event in
                    if case .peerJoined(_, let peer) = event { peer.addresses == ["10.9.9.1:41000"] } else { false }
                }
            }
        }
    }

    @Test("the second observation port answers a probe from the listening port, and nothing but that")
    func theSecondObservationPort() async throws {
        var configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        configuration.probePort = 0
        try await withServer(configuration) { server, url, port in
            try await withPeers(1, url: url) { peers in
                try await peers[0].log.wait("connected") { $0.connected }
                let probePort = try #require(await peers[0].client.probePort)
                #expect(probePort != port)
                let listener = try await Self.listeningPort(host: "127.0.0.1")
                defer { listener.close(promise: nil) }
                let local = try #require(listener.localAddress?.port)
                let second = try #require(SignalClient.url(of: url, port: probePort))
                #expect(
                    try await ReflexiveProbe.observe(url: second, localPort: local, tls: nil)
                        == ObservedAddress(address: "127.0.0.1", port: UInt16(local)))
                // A request that comes a byte at a time is answered as a whole one (the end is found across reads).
                let trickled = try await Self.exchange(
                    port: probePort, "GET /v1/observed HTTP/1.1\r\nHost: x\r\n\r\n", byteByByte: true)
                #expect(trickled.hasPrefix("HTTP/1.1 200"), "\(trickled)")
                // Another path, a request without its end, and one over the size bound get no answer of use.
                let wrongPath = try await Self.exchange(port: probePort, "GET /metrics HTTP/1.1\r\n\r\n")
                #expect(wrongPath.hasPrefix("HTTP/1.1 404"))
                let oversize = try await Self.exchange(
                    port: probePort, "GET /v1/observed HTTP/1.1\r\nx: " + String(repeating: "a", count: 4096))
                #expect(oversize.isEmpty)
            }
        }
    }

    @Test(
        "over IPv6 loopback both observation ports answer a probe from the listening port with its address and port",
        .enabled(if: hasIPv6Loopback))
    func probesOverIPv6() async throws {
        var configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        configuration.host = "::1"
        try await withServer(configuration) { _, _, port in
            let second = try await ObservedProbeServer.bind(
                host: "::1", port: 0, rateLimit: AddressRateLimit(rate: 100, burst: 100),
                logger: makeTestLogger("test.probe"))
            let listener = try await Self.listeningPort(host: "::1")
            defer { listener.close(promise: nil) }
            let local = try #require(listener.localAddress?.port)
            for target in ["ws://[::1]:\(port)\(Signaling.webSocketPath)", "ws://[::1]:\(second.port)/"] {
                #expect(
                    try await ReflexiveProbe.observe(url: target, localPort: local, tls: nil, overIPv6: true)
                        == ObservedAddress(address: "::1", port: UInt16(local)), "\(target)")
            }
            // The family follows the signaling connection's: bound for IPv4, a probe cannot reach an IPv6 server.
            await #expect(throws: (any Error).self) {
                try await ReflexiveProbe.observe(
                    url: "ws://[::1]:\(port)\(Signaling.webSocketPath)", localPort: 0, tls: nil, overIPv6: false)
            }
            await second.close()
        }
    }

    /// A listener on `host` that holds its port with `SO_REUSEADDR` and `SO_REUSEPORT`, as a node's listening port
    /// is held: a probe from that port shares it.
    static func listeningPort(host: String) async throws -> any Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.socket(SocketOptionLevel(SOL_SOCKET), SO_REUSEPORT), value: 1)
            .bind(host: host, port: 0).get()
    }

    /// Whether this machine has the IPv6 loopback address (a container may have IPv6 off).
    static let hasIPv6Loopback: Bool = {
        (try? ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "::1", port: 0).wait())
            .map { channel in
                try? channel.close().wait()
                return true
            } ?? false
    }()

    /// Writes `request` to 127.0.0.1:`port` (in one write, or a byte per write) and reads until the server closes (at
    /// most 10 s).
    static func exchange(port: Int, _ request: String, byteByByte: Bool = false) async throws -> String {
        let response = OneShot<String>()
        final class Reader: ChannelInboundHandler, @unchecked Sendable {
            typealias InboundIn = ByteBuffer
            let response: OneShot<String>
            var text = ""
            init(_ response: OneShot<String>) { self.response = response }
            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                text += String(buffer: unwrapInboundIn(data))
            }
            func channelInactive(context: ChannelHandlerContext) { response.fulfil(text) }
            func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
        }
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Reader(response))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        if byteByByte {
            try await channel.setOption(.socketOption(.tcp_nodelay), value: 1).get()
            for byte in Array(request.utf8) { try? await channel.writeAndFlush(ByteBuffer(bytes: [byte])).get() }
        } else {
            try? await channel.writeAndFlush(ByteBuffer(string: request)).get()
        }
        return try await withTimeout("the server closes", seconds: 10) { try await response.value() }
    }

    @Test("over loopback, the server tells each client its address and port, and members see the reflexive candidate")
    func reflexiveOverLoopback() async throws {
        let configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        try await withServer(configuration) { _, url, _ in
            try await withTwoMembers(url: url) { swarm, a, b, seen in
                let observed = await a.client.observed
                #expect(observed?.address == "127.0.0.1")
                #expect((observed?.port ?? 0) != 0)
                #expect(seen.first?.addresses == ["10.9.9.1:41000", "reflexive@127.0.0.1:41000"])
                #expect(seen.first?.addresses.compactMap(Candidate.init(text:)).map(\.kind) == [.local, .reflexive])

                // A mapping granted later is announced again; the other member hears of it.
                await a.client.announce(
                    swarm: swarm.publicKey, addresses: ["10.9.9.1:41000", "mapped@192.0.2.9:41000"])
                try await b.log.wait("b hears a's mapping") { event in
                    if case .peerJoined(_, let peer) = event {
                        peer.addresses == ["10.9.9.1:41000", "mapped@192.0.2.9:41000", "reflexive@127.0.0.1:41000"]
                    } else {
                        false
                    }
                }
            }
        }
    }
}
