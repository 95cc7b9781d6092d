import Foundation
import Synchronization
import Testing

@testable import HarpClient

/// NAT-PMP (RFC 6886, docs/nat.md): the messages, every answer parsed as hostile input, and the exchange with a
/// responder on loopback standing in for the gateway.
@Suite("NAT-PMP")
struct NATPMPTests {
    static func mappingAnswer(
        result: UInt16 = 0, internalPort: UInt16 = 41000, externalPort: UInt16 = 41000, lifetime: UInt32 = 1800
    ) -> [UInt8] {
        [
            0, 130, UInt8(result >> 8), UInt8(result & 0xFF), 0, 0, 0, 9, UInt8(internalPort >> 8),
            UInt8(internalPort & 0xFF), UInt8(externalPort >> 8), UInt8(externalPort & 0xFF), UInt8(lifetime >> 24),
            UInt8((lifetime >> 16) & 0xFF), UInt8((lifetime >> 8) & 0xFF), UInt8(lifetime & 0xFF),
        ]
    }

    static let addressAnswer: [UInt8] = [0, 128, 0, 0, 0, 0, 1, 0, 11, 77, 0, 13]

    @Test func requestsAreTheRFCsBytes() {
        #expect(NATPMP.externalAddressRequest == [0, 0])
        #expect(
            NATPMP.mappingRequest(internalPort: 41000, externalPort: 41001, lifetime: 1800)
                == [0, 2, 0, 0, 0xA0, 0x28, 0xA0, 0x29, 0, 0, 0x07, 0x08])
    }

    @Test func wellFormedAnswersParse() {
        #expect(NATPMP.parse(Self.addressAnswer, opcode: 0) == .externalAddress("11.77.0.13", epoch: 256))
        #expect(
            NATPMP.parse(Self.mappingAnswer(externalPort: 52000, lifetime: 7200), opcode: 2)
                == .mapping(internalPort: 41000, externalPort: 52000, lifetime: 7200, epoch: 9))
        #expect(NATPMP.parse(Self.mappingAnswer(result: 2), opcode: 2) == .refused(2))
        #expect(NATPMP.parse([0, 128, 0, 3, 0, 0, 0, 0], opcode: 0) == .refused(3))
        // A deletion's answer: port 0, lifetime 0.
        #expect(
            NATPMP.parse(Self.mappingAnswer(externalPort: 0, lifetime: 0), opcode: 2)
                == .mapping(internalPort: 41000, externalPort: 0, lifetime: 0, epoch: 9))
    }

    /// Datagrams that are not a valid answer to the opcode asked.
    static let hostile: [(datagram: [UInt8], opcode: UInt8)] = {
        let address: [UInt8] = addressAnswer
        let header: [UInt8] = [0, 128, 0, 0, 0, 0, 1, 0]
        var cases: [(datagram: [UInt8], opcode: UInt8)] = []
        cases.append(([], 0))
        cases.append((Array(address.prefix(7)), 0))  // short
        cases.append((address + [0], 0))  // long
        cases.append(([1] + Array(address.dropFirst()), 0))  // version 1
        cases.append(([0, 129] + Array(address.dropFirst(2)), 0))  // another opcode's answer
        cases.append(([0, 0] + Array(address.dropFirst(2)), 0))  // a request, not an answer
        cases.append((header + [0, 0, 0, 0], 0))  // no external address yet
        cases.append((header + [127, 0, 0, 1], 0))  // loopback
        cases.append((header + [239, 1, 2, 3], 0))  // multicast
        cases.append((header + [255, 255, 255, 255], 0))  // broadcast
        cases.append((mappingAnswer(), 0))  // a mapping answer to the address request
        cases.append((address, 2))  // and the reverse
        cases.append((Array(mappingAnswer().prefix(15)), 2))
        cases.append((mappingAnswer() + [0, 0, 0, 0], 2))
        cases.append((mappingAnswer(internalPort: 0), 2))
        cases.append((mappingAnswer(externalPort: 0, lifetime: 60), 2))  // a lifetime for no port
        cases.append((mappingAnswer(result: 2) + [0], 2))  // an error of the wrong length
        cases.append((mappingAnswer(), 1))  // UDP: harp never asks
        return cases
    }()

    @Test func hostileAnswersAreRefused() {
        for (datagram, opcode) in Self.hostile {
            #expect(NATPMP.parse(datagram, opcode: opcode) == nil, "\(datagram) to opcode \(opcode)")
        }
        #expect(Self.hostile.count == 18)
    }

    @Test func theDefaultGatewayComesFromTheRouteTable() {
        let table = """
            Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
            eth0\t0000010A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
            eth0\t00000000\t0100010A\t0003\t0\t0\t0\t00000000\t0\t0\t0
            """
        #expect(NATPMP.defaultGateway(inRouteTable: table) == "10.1.0.1")
        // A default route without the gateway flag, garbage and a missing table name no gateway.
        #expect(NATPMP.defaultGateway(inRouteTable: "Iface\teth0\t00000000\t0100010A\t0001") == nil)
        #expect(NATPMP.defaultGateway(inRouteTable: "header\neth0 00000000 zz000000 0003\n\n") == nil)
        #expect(NATPMP.defaultGateway(inRouteTable: "") == nil)
    }

    /// A gateway on loopback that answers each request with `answers(request)` (several datagrams, in order).
    final class Responder: Sendable {
        let fd: Int32
        let port: Int
        /// Set by `stop()`: the serving loop ends at its next wake-up (at most 100 ms later).
        private let stopped = Mutex(false)

        /// Ends `serve` without waiting out its idle limit (a test that knows its last request was answered).
        func stop() { stopped.withLock { $0 = true } }

        init() throws {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            try #require(bound == 0)
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            self.fd = fd
            port = Int(UInt16(bigEndian: address.sin_port))
        }

        deinit { close(fd) }

        /// Answers up to `requests` requests on a thread of its own (its blocking reads must hold neither a thread of
        /// the cooperative pool nor one of the dispatch pool, where the clients' blocking exchanges run), until no
        /// request came for `idle` seconds or `stop()`; the requests it saw. In a full parallel test run a client's
        /// next request can come seconds after the last (its blocking call waits for a dispatch thread): a test with
        /// several exchanges gives a long `idle` and calls `stop()`.
        func serve(
            requests: Int, idle: Double = 5, answers: @escaping @Sendable ([UInt8]) -> [[UInt8]]
        ) -> Task<[[UInt8]], Never> {
            let fd = self.fd
            let (result, sink) = AsyncStream.makeStream(of: [[UInt8]].self)
            let thread = Thread { [self] in
                var seen: [[UInt8]] = []
                var buffer = [UInt8](repeating: 0, count: 256)
                var waited = 0.0
                while seen.count < requests, waited < idle, !stopped.withLock({ $0 }) {
                    var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    guard poll(&poller, 1, 100) > 0 else {
                        waited += 0.1
                        continue
                    }
                    waited = 0
                    var from = sockaddr_storage()
                    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
                    let count = buffer.withUnsafeMutableBytes { raw in
                        withUnsafeMutablePointer(to: &from) {
                            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                                recvfrom(fd, raw.baseAddress, raw.count, 0, $0, &length)
                            }
                        }
                    }
                    guard count > 0 else { break }
                    let request = Array(buffer.prefix(count))
                    seen.append(request)
                    for answer in answers(request) {
                        _ = answer.withUnsafeBytes { raw in
                            withUnsafePointer(to: &from) {
                                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                                    sendto(fd, raw.baseAddress, raw.count, 0, $0, length)
                                }
                            }
                        }
                    }
                }
                sink.yield(seen)
                sink.finish()
            }
            thread.start()
            return Task { await result.first { _ in true } ?? [] }
        }
    }

    /// Runs the client's blocking exchange on a dispatch thread, as `PortMapper` does.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: body()) }
        }
    }

    @Test func aMappingIsAskedForAndGrantedPastHostileDatagrams() async throws {
        let responder = try Responder()
        let served = responder.serve(requests: 2) { request in
            switch request.count {
            case 2: [[0, 128, 9, 9], Self.addressAnswer + [1], Self.addressAnswer]
            default: [Self.mappingAnswer(internalPort: 1), Self.mappingAnswer(externalPort: 52000, lifetime: 600)]
            }
        }
        let client = NATPMP(gateway: "127.0.0.1", port: responder.port)
        let (address, mapping) = await Self.blocking {
            (client.externalAddress(), client.map(internalPort: 41000, externalPort: 41000, lifetime: 1800))
        }
        #expect(address == "11.77.0.13")
        // The first mapping answer names another internal port (not ours, skipped); the second is the grant.
        #expect(mapping?.externalPort == 52000)
        #expect(mapping?.lifetime == 600)
        let requests = await served.value
        #expect(requests == [[0, 0], NATPMP.mappingRequest(internalPort: 41000, externalPort: 41000, lifetime: 1800)])
    }

    @Test func theGrantedPortAndLifetimeAreTheGatewaysChoice() async throws {
        let responder = try Responder()
        let served = responder.serve(requests: 1) { _ in [Self.mappingAnswer(externalPort: 52000, lifetime: 600)] }
        let client = NATPMP(gateway: "127.0.0.1", port: responder.port)
        let mapping = await Self.blocking { client.map(internalPort: 41000, externalPort: 41000, lifetime: 1800) }
        #expect(mapping?.externalPort == 52000)
        #expect(mapping?.lifetime == 600)
        _ = await served.value
    }

    /// A silent gateway is asked three times (after 0, 250 and 750 ms: 1.75 s in all), then given up.
    @Test func aSilentGatewayIsAskedThreeTimesThenGivenUp() async throws {
        let responder = try Responder()
        let served = responder.serve(requests: 4) { _ in [] }
        let client = NATPMP(gateway: "127.0.0.1", port: responder.port)
        let address = await Self.blocking { client.externalAddress() }
        #expect(address == nil)
        // The responder waits 5 s for a fourth request that never comes.
        #expect(await served.value == [[0, 0], [0, 0], [0, 0]])
    }
}
