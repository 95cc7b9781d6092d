/// Signaling: the self-hosted signaling server (Hummingbird + WebSocket) where peers of a swarm meet,
/// the relay for peers that cannot reach each other, the client actor that SwarmKit uses, and later the
/// append-only version log. Arrives with issue 6.
public enum Signaling {}
