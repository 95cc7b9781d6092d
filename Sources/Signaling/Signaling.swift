/// Signaling: the self-hosted signaling server (Hummingbird + WebSocket) where peers of a swarm meet,
/// the relay for peers that cannot reach each other, and the client actor that SwarmKit uses.
///
/// The wire protocol is described in `docs/signaling.md`; the server is ``SignalServer``, the client
/// ``SignalClient``. The server's SQLite database under `--data` keeps bans and failure counts so a restart
/// forgives nothing, and is where the append-only version log will live.
public enum Signaling {
    /// The protocol version carried in `challenge` and checked in `hello`.
    public static let protocolVersion = 1
    /// The WebSocket endpoint's path.
    public static let webSocketPath = "/v1/ws"
}
