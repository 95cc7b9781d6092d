import NIOCore
import Testing

@testable import SwarmKit

#if canImport(Glibc)
    import Glibc
#endif

/// Spray punching's sockets over loopback (docs/nat.md, "Spray punching"): the NATs themselves are the testbed's
/// (`NATTestbedTests`); here, that the first socket to connect wins and is handed to the peer protocol.
@Suite struct SprayPunchTests {
    static let loopback: [UInt8] = [127, 0, 0, 1]

    /// A listening TCP socket on 127.0.0.1 and its port.
    static func listening() throws -> (CInt, UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x0100_007F)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && listen(fd, 64) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard fd >= 0, bound else { throw IOError(errnoCode: errno, reason: "listen") }
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    /// A port nothing listens on (bound, read, closed).
    static func closedPort() throws -> UInt16 {
        let (fd, port) = try listening()
        close(fd)
        return port
    }

    /// The peer's port of a connected socket.
    static func peerPort(_ fd: CInt) -> UInt16? {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) == 0 }
        }
        return ok ? UInt16(bigEndian: address.sin_port) : nil
    }

    @Test func aProbeFindsTheOnePortThatAnswersAmongRefusedOnes() async throws {
        let (listener, port) = try Self.listening()
        defer { close(listener) }
        let local = try Self.closedPort()
        // (Never the probe's own port: a socket dialling its own address connects to itself.)
        let refused = try (0..<150).map { _ in try Self.closedPort() }.filter { $0 != port && $0 != local }
        // The answering port in the third wave: the first two waves' refusals do not end the probe.
        var ports = Array(refused.prefix(140))
        ports.insert(port, at: 139)
        let fd = try #require(
            await SprayPunch.probe(Self.loopback, localPort: local, ports: ports, duration: .seconds(5)))
        defer { close(fd) }
        #expect(Self.peerPort(fd) == port)
    }

    @Test func aProbeWithNoPortAnsweringEndsWithNothing() async throws {
        let local = try Self.closedPort()
        let ports = try (0..<20).map { _ in try Self.closedPort() }.filter { $0 != local }
        let started = ContinuousClock.now
        let fd = await SprayPunch.probe(Self.loopback, localPort: local, ports: ports, duration: .seconds(120))
        #expect(fd == nil)
        // Every probe refused and none left to start: the race ends then, not when its two minutes are up (it takes
        // milliseconds; the margin is for a loaded machine).
        #expect(ContinuousClock.now - started < .seconds(60))
    }

    @Test func openingManyFlowsHandsBackOneConnectedSocket() async throws {
        let (listener, port) = try Self.listening()
        defer { close(listener) }
        let fd = try #require(await SprayPunch.open(to: Self.loopback, port: port, count: 8, lifetime: .seconds(5)))
        defer { close(fd) }
        #expect(Self.peerPort(fd) == port)
        #expect(await SprayPunch.open(to: Self.loopback, port: try Self.closedPort(), count: 4) == nil)
        #expect(await SprayPunch.open(to: [127, 0, 0], port: port, count: 4) == nil)
    }

    @Test func randomPortsAreDistinctAndUnprivileged() {
        let ports = SprayPunch.randomPorts(SprayPunch.maxProbes)
        #expect(ports.count == SprayPunch.maxProbes)
        #expect(Set(ports).count == ports.count)
        #expect(ports.allSatisfy { $0 >= 1024 })
    }

    /// Both ends of a spray punch are TCP clients: the adopted sockets run the peer protocol with the roles given,
    /// the initiator sending the swarm preamble and the responder reading it first.
    @Test(arguments: [true, false])
    func adoptedSocketsHandshakeWithTheRolesGiven(selector: Bool) async throws {
        // Two ends of one TCP connection over loopback (the options the peer protocol sets are TCP's).
        let (listener, port) = try Self.listening()
        defer { close(listener) }
        let dialled = try #require(await SprayPunch.open(to: Self.loopback, port: port, count: 1))
        let accepted = accept(listener, nil, nil)
        try #require(accepted >= 0)
        let fds = [dialled, accepted]
        var initiator = LoopbackTests.configuration(key: PeerHandshakeTests.keyA)
        var responder = LoopbackTests.configuration(key: PeerHandshakeTests.keyA)
        initiator.swarmSelector = selector ? SwarmSelectorTests.swarmA : nil
        responder.swarmSelector = initiator.swarmSelector
        initiator.expectedRemoteDeviceKey = responder.identity.publicKey
        responder.expectedRemoteDeviceKey = initiator.identity.publicKey
        let (initiatorConfiguration, responderConfiguration) = (initiator, responder)
        async let a = PeerConnection.adopt(socket: fds[0], role: .initiator, configuration: initiatorConfiguration)
        async let b = PeerConnection.adopt(socket: fds[1], role: .responder, configuration: responderConfiguration)
        let (first, second) = try await (a, b)
        #expect(first.session.remoteDeviceKey == responder.identity.publicKey)
        #expect(second.session.remoteDeviceKey == initiator.identity.publicKey)
        try await first.channel.executeThenClose { inbound, outbound in
            try await second.channel.executeThenClose { secondInbound, secondOutbound in
                try await outbound.write(.interested)
                var messages = secondInbound.makeAsyncIterator()
                #expect(try await messages.next() == .interested)
                try await secondOutbound.write(.unchoke)
                var replies = inbound.makeAsyncIterator()
                #expect(try await replies.next() == .unchoke)
            }
        }
    }
}
