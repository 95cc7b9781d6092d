import Foundation
import Testing

@testable import HarpClient

/// PCP (RFC 6887, docs/nat.md): the MAP request's bytes, every answer parsed as hostile input, and the exchange with a
/// responder on loopback standing in for the gateway (``NATPMPTests/Responder``), including the fall back to NAT-PMP.
@Suite("PCP")
struct PCPTests {
    static let nonce: [UInt8] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC]

    static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
    static func be32(_ value: UInt32) -> [UInt8] { be16(UInt16(value >> 16)) + be16(UInt16(value & 0xFFFF)) }
    /// `::ffff:a.b.c.d`.
    static func mapped(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> [UInt8] {
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, a, b, c, d]
    }

    /// A MAP answer laid out as RFC 6887 §7.2 and §11.1 draw it, written out here rather than with the client's code.
    static func answer(
        version: UInt8 = 2, opcode: UInt8 = 0x81, result: UInt8 = 0, lifetime: UInt32 = 1800,
        nonce: [UInt8] = PCPTests.nonce, protocol proto: UInt8 = 6, internalPort: UInt16 = 41000,
        externalPort: UInt16 = 52000, address: [UInt8] = mapped(11, 77, 0, 13), options: [UInt8] = []
    ) -> [UInt8] {
        let header = [version, opcode, 0, result] + be32(lifetime) + be32(77) + [UInt8](repeating: 0, count: 12)
        return header + nonce + [proto, 0, 0, 0] + be16(internalPort) + be16(externalPort) + address + options
    }

    // MARK: The request

    @Test func theMapRequestIsTheRFCsLayout() {
        let client = PCPTests.mapped(192, 168, 1, 20)
        let request = PCP.mappingRequest(
            clientAddress: client, nonce: Self.nonce, internalPort: 41000, externalPort: 41001, lifetime: 1800)
        #expect(request.count == 60)
        // §7.1: version 2; R 0 and opcode MAP (1); 16 reserved bits; requested lifetime; the client's address.
        #expect(request[0] == 2)
        #expect(request[1] == 0x01)
        #expect(request[2..<4] == [0, 0])
        #expect(Array(request[4..<8]) == [0, 0, 0x07, 0x08])
        #expect(Array(request[8..<24]) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 192, 168, 1, 20])
        // §11.1: nonce; protocol TCP; 24 reserved bits; internal port; suggested external port; suggested external
        // address (::ffff:0.0.0.0, IPv4 with no preference).
        #expect(Array(request[24..<36]) == Self.nonce)
        #expect(request[36] == 6)
        #expect(request[37..<40] == [0, 0, 0])
        #expect(Array(request[40..<42]) == [0xA0, 0x28])
        #expect(Array(request[42..<44]) == [0xA0, 0x29])
        #expect(Array(request[44..<60]) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 0, 0])
        // A deletion is the same request with lifetime 0.
        let deletion = PCP.mappingRequest(
            clientAddress: client, nonce: Self.nonce, internalPort: 41000, externalPort: 41001, lifetime: 0)
        #expect(Array(deletion[4..<8]) == [0, 0, 0, 0])
        #expect(
            Array(deletion.prefix(4)) + Array(deletion.dropFirst(8)) == Array(request.prefix(4)) + request.dropFirst(8))
    }

    @Test func eachClientHasItsOwnRandomNonce() {
        let one = PCP(gateway: "10.0.0.1")
        let two = PCP(gateway: "10.0.0.1")
        #expect(one.nonce.count == 12)
        #expect(one.nonce != two.nonce)
    }

    // MARK: Answers

    static func parse(_ datagram: [UInt8], lifetime: UInt32 = 1800) -> PCP.Answer? {
        PCP.parse(datagram, nonce: Self.nonce, internalPort: 41000, lifetime: lifetime)
    }

    @Test func wellFormedAnswersParse() {
        #expect(
            Self.parse(Self.answer(lifetime: 600))
                == .mapping(externalAddress: "11.77.0.13", externalPort: 52000, lifetime: 600, epoch: 77))
        // A lifetime over the one asked is clamped to it.
        #expect(
            Self.parse(Self.answer(lifetime: 86400))
                == .mapping(externalAddress: "11.77.0.13", externalPort: 52000, lifetime: 1800, epoch: 77))
        // Refusals (§7.4: 2 NOT_AUTHORIZED, 8 NO_RESOURCES) carry the code, not a mapping.
        #expect(Self.parse(Self.answer(result: 2)) == .refused(2))
        #expect(
            Self.parse(Self.answer(result: 8, lifetime: 30, externalPort: 0, address: [UInt8](repeating: 0, count: 16)))
                == .refused(8))
        // A deletion's answer: lifetime 0, and the address does not matter.
        #expect(
            Self.parse(
                Self.answer(lifetime: 0, externalPort: 0, address: [UInt8](repeating: 0, count: 16)), lifetime: 0)
                == .mapping(externalAddress: nil, externalPort: 0, lifetime: 0, epoch: 77))
        // Optional options (128 and up) are skipped, padded to 4 bytes.
        #expect(
            Self.parse(Self.answer(options: [0xC0, 0, 0, 3, 1, 2, 3, 0] + [0x80, 0, 0, 0]))
                == .mapping(externalAddress: "11.77.0.13", externalPort: 52000, lifetime: 1800, epoch: 77))
        // RFC 6887 §9: a NAT-PMP-only server's "unsupported version" (RFC 6886 §3.5), short or full length.
        #expect(Self.parse([0, 129, 0, 1, 0, 0, 0, 5]) == .unsupportedVersion)
        #expect(Self.parse([0, 129, 0, 1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0]) == .unsupportedVersion)
    }

    /// Datagrams that are not a valid answer to our MAP request.
    static let hostile: [(what: String, datagram: [UInt8])] = {
        var cases: [(what: String, datagram: [UInt8])] = []
        let good = answer()
        cases.append(("empty", []))
        cases.append(("short", Array(good.prefix(56))))
        cases.append(("header only", Array(good.prefix(24))))
        cases.append(("odd length", good + [0]))
        cases.append(("not a multiple of 4", good + [0x80, 0]))
        cases.append(("over 1100 bytes", answer(options: [0x80, 0, 0x04, 0x10] + [UInt8](repeating: 0, count: 1040))))
        cases.append(("wrong nonce", answer(nonce: [UInt8](repeating: 0x11, count: 12))))
        cases.append(("version 1", answer(version: 1)))
        cases.append(("version 0 at PCP's length", answer(version: 0)))
        cases.append(("R bit clear (a request)", answer(opcode: 0x01)))
        cases.append(("PEER's answer", answer(opcode: 0x82)))
        cases.append(("ANNOUNCE's answer", answer(opcode: 0x80)))
        cases.append(("UDP, not TCP", answer(protocol: 17)))
        cases.append(("another internal port", answer(internalPort: 41001)))
        cases.append(("external port 0 with a lifetime", answer(externalPort: 0)))
        cases.append(
            (
                "IPv6 external address",
                answer(address: [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1])
            ))
        cases.append(
            ("IPv4-compatible, not mapped", answer(address: [UInt8](repeating: 0, count: 12) + [11, 77, 0, 13])))
        cases.append(("::ffff:0.0.0.0", answer(address: mapped(0, 0, 0, 0))))
        cases.append(("loopback", answer(address: mapped(127, 0, 0, 1))))
        cases.append(("multicast", answer(address: mapped(239, 1, 2, 3))))
        cases.append(("broadcast", answer(address: mapped(255, 255, 255, 255))))
        cases.append(("option overruns the datagram", answer(options: [0x80, 0, 0, 8, 1, 2, 3, 4])))
        cases.append(("option's padding overruns", answer(options: [0x80, 0, 0, 5, 1, 2, 3, 4])))
        cases.append(("unknown mandatory option", answer(options: [0x7F, 0, 0, 4, 1, 2, 3, 4])))
        cases.append(("mandatory THIRD_PARTY option", answer(options: [1, 0, 0, 16] + mapped(10, 0, 0, 9))))
        cases.append(("mandatory option after an optional one", answer(options: [0x80, 0, 0, 0, 3, 0, 0, 0])))
        cases.append(("a refusal with another nonce", answer(result: 2, nonce: [UInt8](repeating: 0, count: 12))))
        cases.append(("NAT-PMP answer, result 2", [0, 129, 0, 2, 0, 0, 0, 5]))
        cases.append(("NAT-PMP unsupported version, odd length", [0, 129, 0, 1, 0, 0, 0, 5, 0]))
        cases.append(("NAT-PMP request", [0, 1, 0, 1, 0, 0, 0, 5]))
        return cases
    }()

    @Test func hostileAnswersAreRefused() {
        for (what, datagram) in Self.hostile {
            #expect(Self.parse(datagram) == nil, "\(what)")
        }
        #expect(Self.hostile.count == 30)
        // The well-formed answer they were made from parses (so each refusal is the one change's doing).
        #expect(Self.parse(Self.answer()) != nil)
    }

    // MARK: Over loopback

    typealias Responder = NATPMPTests.Responder

    static func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await NATPMPTests.blocking(body)
    }

    @Test func aMappingIsGrantedAndTheRequestNamesThisHost() async throws {
        let responder = try Responder()
        let served = responder.serve(requests: 1) { request in
            [Self.answer(nonce: Array(request[24..<36]), externalPort: 52000, address: Self.mapped(11, 77, 0, 13))]
        }
        let client = PCP(gateway: "127.0.0.1", port: responder.port)
        let answer = await Self.blocking { client.map(internalPort: 41000, externalPort: 41000, lifetime: 1800) }
        #expect(answer == .mapping(externalAddress: "11.77.0.13", externalPort: 52000, lifetime: 1800, epoch: 77))
        let requests = await served.value
        // The client's address is the connected socket's own (loopback here), IPv4-mapped; the nonce is the client's.
        #expect(
            requests == [
                PCP.mappingRequest(
                    clientAddress: Self.mapped(127, 0, 0, 1), nonce: client.nonce, internalPort: 41000,
                    externalPort: 41000, lifetime: 1800)
            ])
    }

    @Test func hostileDatagramsBeforeTheGrantAreSkipped() async throws {
        let responder = try Responder()
        let served = responder.serve(requests: 1) { request in
            let ours = Array(request[24..<36])
            return [
                Self.answer(nonce: [UInt8](repeating: 0, count: 12), externalPort: 1111),
                Self.answer(nonce: ours, externalPort: 2222, options: [0x7F, 0, 0, 0]),
                Self.answer(
                    nonce: ours, externalPort: 3333,
                    options: [0x80, 0, 0x04, 0x10] + [UInt8](repeating: 0, count: 1040)),
                Self.answer(nonce: ours, externalPort: 4444, address: Self.mapped(127, 0, 0, 1)),
                Self.answer(nonce: ours, externalPort: 52000),
            ]
        }
        let client = PCP(gateway: "127.0.0.1", port: responder.port)
        let answer = await Self.blocking { client.map(internalPort: 41000, externalPort: 41000, lifetime: 1800) }
        #expect(answer == .mapping(externalAddress: "11.77.0.13", externalPort: 52000, lifetime: 1800, epoch: 77))
        _ = await served.value
    }

    /// A flood of garbage ends a try after ``GatewayUDP/maxDatagrams`` datagrams: the request goes out again, and the
    /// grant that follows the flood is read within the second try.
    @Test func aFloodOfGarbageEndsATry() async throws {
        let responder = try Responder()
        let served = responder.serve(requests: 2) { request in
            let garbage = (0..<20).map { [UInt8](repeating: UInt8($0), count: 4 * ($0 + 1)) }
            return garbage + [Self.answer(nonce: Array(request[24..<36]))]
        }
        let client = PCP(gateway: "127.0.0.1", port: responder.port)
        let answer = await Self.blocking { client.map(internalPort: 41000, externalPort: 41000, lifetime: 1800) }
        #expect(answer == .mapping(externalAddress: "11.77.0.13", externalPort: 52000, lifetime: 1800, epoch: 77))
        // Without the bound, the first try would read all 21 datagrams and never send a second request (the responder
        // would give up waiting for it after 5 s).
        #expect(await served.value.count == 2)
    }

    /// A silent gateway is asked three times (after 0, 250 and 750 ms), then given up, and not asked in NAT-PMP
    /// (a NAT-PMP server answers PCP with "unsupported version"): discovery goes on to UPnP.
    @Test func aSilentGatewayIsAskedThreeTimesThenGivenUp() async throws {
        let responder = try Responder()
        let served = responder.serve(requests: 4) { _ in [] }
        let pcp = PCP(gateway: "127.0.0.1", port: responder.port)
        let natPMP = NATPMP(gateway: "127.0.0.1", port: responder.port)
        let found = await Self.blocking { PortMapper.atGateway(pcp, natPMP, port: 41000) }
        #expect(found == nil)
        // The responder waits 5 s for a fourth request that never comes.
        #expect(await served.value.map(\.count) == [60, 60, 60])
    }

    /// A gateway where nothing listens on the port answers with ICMP "port unreachable": given up at once, not after
    /// three tries.
    @Test func aGatewayWithNothingOnThePortIsGivenUpAtOnce() async throws {
        // A loopback port that was bound a moment ago and is closed now.
        let closed = try Responder().port
        let client = PCP(gateway: "127.0.0.1", port: closed)
        let answer = await Self.blocking { client.map(internalPort: 41000, externalPort: 41000, lifetime: 1800) }
        #expect(answer == .unreachable)
    }

    // MARK: PortMapper

    /// RFC 6887 §9: a NAT-PMP-only gateway answers the PCP request with NAT-PMP's "unsupported version"; the mapper
    /// then asks NAT-PMP, at once (no retries of PCP).
    @Test func aNATPMPOnlyGatewayFallsBackToNATPMP() async throws {
        let responder = try Responder()
        // Room for retries on a loaded machine; the responder then waits 5 s for more.
        let served = responder.serve(requests: 6) { request in
            request.first == 2 ? [[0, 129, 0, 1, 0, 0, 0, 5]] : [NATPMPTests.addressAnswer]
        }
        let pcp = PCP(gateway: "127.0.0.1", port: responder.port)
        let natPMP = NATPMP(gateway: "127.0.0.1", port: responder.port)
        let found = await Self.blocking { PortMapper.atGateway(pcp, natPMP, port: 41000) }
        guard case .router(let mapper) = found, case .natPMP(_, let external) = mapper.backend else {
            Issue.record("not NAT-PMP: \(String(describing: found))")
            return
        }
        #expect(external == "11.77.0.13")
        #expect(mapper.protocolName == "NAT-PMP")
        let requests = await served.value
        #expect(requests.first?.count == 60)
        #expect(requests.last == NATPMP.externalAddressRequest)
    }

    @Test func aPCPGatewayGivesTheFirstMappingAtDiscovery() async throws {
        let responder = try Responder()
        let served = responder.serve(requests: 1) { request in [Self.answer(nonce: Array(request[24..<36]))] }
        let pcp = PCP(gateway: "127.0.0.1", port: responder.port)
        let natPMP = NATPMP(gateway: "127.0.0.1", port: responder.port)
        let found = await Self.blocking { PortMapper.atGateway(pcp, natPMP, port: 41000) }
        guard case .mapped(let mapper, let mapping) = found, case .pcp = mapper.backend else {
            Issue.record("not PCP: \(String(describing: found))")
            return
        }
        #expect(mapper.protocolName == "PCP")
        #expect(
            mapping
                == PortMapper.Mapping(
                    externalAddress: "11.77.0.13", externalPort: 52000, internalPort: 41000, lifetime: 1800))
        #expect(await served.value.count == 1)
    }

    /// A PCP server that refuses is still the router (its NAT-PMP side would be the same server): no NAT-PMP request.
    @Test func aPCPRefusalIsNotFollowedByNATPMP() async throws {
        let responder = try Responder()
        let served = responder.serve(requests: 2) { request in
            request.first == 2 ? [Self.answer(result: 2, nonce: Array(request[24..<36]))] : [NATPMPTests.addressAnswer]
        }
        let pcp = PCP(gateway: "127.0.0.1", port: responder.port)
        let natPMP = NATPMP(gateway: "127.0.0.1", port: responder.port)
        let found = await Self.blocking { PortMapper.atGateway(pcp, natPMP, port: 41000) }
        guard case .mapped(let mapper, nil) = found, case .pcp = mapper.backend else {
            Issue.record("not a refused PCP mapping: \(String(describing: found))")
            return
        }
        // Only PCP requests (the responder waits 5 s for a NAT-PMP one that never comes).
        let requests = await served.value
        #expect(!requests.isEmpty)
        #expect(requests.allSatisfy { $0.count == 60 && $0.first == 2 })
    }

    /// Map, renew and delete carry the same nonce; the deletion asks lifetime 0; a renewal the router moves to another
    /// port fails.
    @Test func renewAndDeleteReuseTheNonce() async throws {
        let responder = try Responder()
        // Room for retries on a loaded machine, and a minute between exchanges; stopped once the deletion is answered.
        let served = responder.serve(requests: 12, idle: 60) { request in
            let asked = request[4..<8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let suggested = UInt16(request[42]) << 8 | UInt16(request[43])
            // The first request (41000) gets 52001, which is kept when asked again; any other port is moved to 52002.
            let port: UInt16 = asked == 0 ? 0 : suggested == 41000 || suggested == 52001 ? 52001 : 52002
            return [Self.answer(lifetime: asked, nonce: Array(request[24..<36]), externalPort: port)]
        }
        let mapper = PortMapper(backend: .pcp(PCP(gateway: "127.0.0.1", port: responder.port)))
        let mapping = try #require(await mapper.map(port: 41000))
        #expect(mapping.externalPort == 52001)
        #expect(mapping.externalAddress == "11.77.0.13")
        #expect(await mapper.renew(mapping))
        let elsewhere = PortMapper.Mapping(externalAddress: "11.77.0.13", externalPort: 52009, internalPort: 41000)
        #expect(await mapper.renew(elsewhere) == false)
        #expect(await mapper.unmap(mapping))
        responder.stop()
        let requests = await served.value
        #expect(requests.count >= 4)
        #expect(Set(requests.map { Array($0[24..<36]) }).count == 1)
        #expect(requests.map { Array($0[4..<8]) }.last == [0, 0, 0, 0])
        #expect(requests.map { Array($0[4..<8]) }.dropLast().allSatisfy { $0 == [0, 0, 0x07, 0x08] })
    }

    /// Against a real router (opt-in: `HARP_PCP_GATEWAY=10.6.0.1`, run inside a namespace behind one, such as the
    /// testbed's `pmp` site running miniupnpd): the mapping is granted in PCP, renewed and deleted (kept with
    /// `HARP_PCP_KEEP=1`, to look at the router's rules; `HARP_PCP_PORT` sets the internal port, 41000 by default).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["HARP_PCP_GATEWAY"] != nil))
    func aRealGatewayMapsRenewsAndDeletes() async throws {
        let gateway = try #require(ProcessInfo.processInfo.environment["HARP_PCP_GATEWAY"])
        let port = UInt16(ProcessInfo.processInfo.environment["HARP_PCP_PORT"] ?? "") ?? 41000
        let found = await Self.blocking {
            PortMapper.atGateway(PCP(gateway: gateway), NATPMP(gateway: gateway), port: port)
        }
        guard case .mapped(let mapper, let first) = found else {
            Issue.record("no PCP answer: \(String(describing: found))")
            return
        }
        let mapping = try #require(first)
        print("PCP mapped \(mapping.externalAddress):\(mapping.externalPort) for \(mapping.lifetime) s")
        #expect(mapping.lifetime > 0)
        #expect(await mapper.renew(mapping))
        if ProcessInfo.processInfo.environment["HARP_PCP_KEEP"] == nil {
            #expect(await mapper.unmap(mapping))
        }
    }
}
