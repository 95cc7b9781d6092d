/// The signaling protocol's constants. Peers of a swarm meet at a self-hosted signaling server, which also relays
/// for peers that cannot reach each other.
///
/// The wire protocol is described in `docs/signaling.md`. This module (`SignalingProtocol`) holds what both ends
/// share: the messages, keys, proofs and signers. The client is `SignalClient` in `SignalingClient`, the server
/// `SignalServer` in `SignalingServer`; a client never links the server.
public enum Signaling {
    /// The protocol version carried in `challenge` and checked in `hello`.
    public static let protocolVersion = 1
    /// The WebSocket endpoint's path.
    public static let webSocketPath = "/v1/ws"
}
