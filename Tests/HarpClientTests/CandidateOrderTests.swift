import HarpClient
import SignalingProtocol
import Testing

/// The order a peer's candidates are dialled in (docs/nat.md), as plain values.
@Suite("Candidate order")
struct CandidateOrderTests {
    let onLink: (String) -> Bool = { $0.hasPrefix("10.1.0.") }

    @Test("a local candidate on our subnet first, then mapped, reflexive, other local, unknown kinds")
    func order() {
        let announced = [
            "future@192.0.2.50:1", "reflexive@198.51.100.11:41000", "10.2.0.2:41000", "mapped@198.51.100.11:41001",
            "10.1.0.2:41000",
        ]
        let ordered = CandidateOrder.order(announced, isOnLink: onLink).map(\.text)
        #expect(
            ordered == [
                "10.1.0.2:41000", "mapped@198.51.100.11:41001", "reflexive@198.51.100.11:41000", "10.2.0.2:41000",
                "future@192.0.2.50:1",
            ])
    }

    @Test("duplicates are dialled once, junk is dropped, and a flood is cut to the limit")
    func bounded() {
        let ordered = CandidateOrder.order(
            ["10.2.0.2:41000", "reflexive@10.2.0.2:41000", "not an address", "x@y@z:1"], isOnLink: onLink)
        #expect(ordered.map(\.text) == ["reflexive@10.2.0.2:41000"])
        let flood = (1...200).map { "reflexive@192.0.2.\($0 % 250):\($0)" }
        #expect(CandidateOrder.order(flood, isOnLink: onLink).count == 8)
        #expect(CandidateOrder.order(flood, limit: 3, isOnLink: onLink).count == 3)
    }

    @Test("a peer with no usable candidate has none to dial (the relay is left)")
    func nothing() {
        #expect(CandidateOrder.order([], isOnLink: onLink).isEmpty)
        #expect(CandidateOrder.order(["", "::"], isOnLink: onLink).isEmpty)
    }
}

@Suite("Address scope")
struct AddressScopeTests {
    @Test(
        "private addresses ask for a mapping; loopback, link-local, public and junk do not",
        arguments: [
            ("10.1.0.2", true), ("172.16.0.1", true), ("172.31.255.255", true), ("172.32.0.1", false),
            ("192.168.1.7", true), ("100.64.0.1", true), ("100.128.0.1", false), ("127.0.0.1", false),
            ("169.254.1.1", false), ("11.77.0.11", false), ("198.51.100.7", false), ("fd00::1", true),
            ("fe80::1", false), ("2001:db8::1", false), ("10.1.0", false), ("10.1.0.256", false), ("", false),
        ])
    func scope(host: String, isPrivate: Bool) {
        #expect(AddressScope.isPrivate(host) == isPrivate)
    }
}
