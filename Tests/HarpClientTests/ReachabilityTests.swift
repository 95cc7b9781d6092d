import Testing

@testable import HarpClient
@testable import SignalingClient

/// What `harp-cli status` says of how peers reach a process (docs/nat.md, "Status").
@Suite("Reachability")
struct ReachabilityTests {
    @Test("a symmetric NAT is named with the two ports seen, and a mapping is suggested only without one")
    func symmetric() throws {
        let object = Reachability(
            listenPort: 41000, mapped: nil, reflexive: nil, nat: .dependent(ports: [17232, 26986])
        ).json
        #expect(object["nat"] as? String == "symmetric")
        #expect(object["natPorts"] as? [Int] == [17232, 26986])
        let line = try #require(Reachability.summary(object))
        #expect(line.hasPrefix("peer port 41000, NAT symmetric (port 41000 seen as 17232 and 26986"))
        #expect(line.hasSuffix("else only through the relay; a port mapping on the router would let every peer in"))
        var mapped = object
        mapped["mapped"] = "192.0.2.9:41000"
        let withMapping = try #require(Reachability.summary(mapped))
        #expect(withMapping.contains("mapped at 192.0.2.9:41000"))
        #expect(!withMapping.contains("a port mapping on the router would"))
    }

    @Test("an endpoint-independent NAT shows the port it maps the peer port to; nothing is said without a port")
    func endpointIndependent() throws {
        let object = Reachability(
            listenPort: 41000, mapped: nil, reflexive: "198.51.100.7:51000", nat: .endpointIndependent
        ).json
        #expect(
            Reachability.summary(object)
                == "peer port 41000, seen by the signaling server as 198.51.100.7:51000, NAT endpoint-independent "
                + "(a punch can reach it)")
        #expect(Reachability.summary(Reachability(listenPort: 0, mapped: nil, reflexive: nil, nat: nil).json) == nil)
        #expect(Reachability.summary(["listenPort": "41000"]) == nil)
    }
}
