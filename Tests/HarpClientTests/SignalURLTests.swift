import HarpClient
import Testing

/// The signaling server's URL as `--signal`, `HARP_SIGNAL` and config.toml give it: what is refused, and why.
@Suite("Signaling URL")
struct SignalURLTests {
    @Test(
        "ws:// and wss:// URLs with a host name or an IPv4 address are taken",
        arguments: [
            "ws://127.0.0.1:7000/v1/ws", "wss://signal.example.com/v1/ws", "wss://signal.example.com:8443/v1/ws",
            "ws://localhost:7000/v1/ws?x=1",
        ])
    func taken(url: String) {
        #expect(PeerSettings.signalURLProblem(url) == nil)
    }

    @Test(
        "other schemes and URLs without a host are refused",
        arguments: ["http://127.0.0.1:7000/v1/ws", "ws://", "signal.example.com/v1/ws", ""])
    func refused(url: String) throws {
        let problem = try #require(PeerSettings.signalURLProblem(url))
        #expect(problem.contains("ws:// or wss://"))
    }

    /// The WebSocket client ends the host at the first colon: such a URL retried its connection for ever, silently.
    @Test(
        "an IPv6 address in brackets is refused with what to use instead",
        arguments: ["ws://[::1]:7000/v1/ws", "wss://[2001:db8::7]/v1/ws", "ws://user@[::1]:7000/"])
    func ipv6LiteralRefused(url: String) throws {
        let problem = try #require(PeerSettings.signalURLProblem(url))
        #expect(problem.contains("IPv6 address") && problem.contains("host name"), "\(problem)")
    }
}
