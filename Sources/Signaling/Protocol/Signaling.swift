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
    /// The reflexive-address probe (docs/nat.md, "The listening port's mapping"): a plain `GET` answered with
    /// `ObservedReply`, the address and port the server saw the request's connection come from.
    public static let observedPath = "/v1/observed"
}

/// The body of the answer to `GET /v1/observed`: the connection's source address and port as the server saw it (no
/// port when a trusted proxy forwarded the address).
public struct ObservedReply: Codable, Sendable, Equatable {
    public var address: String
    public var port: Int?

    public init(address: String, port: Int?) {
        self.address = address
        self.port = port
    }

    /// The reply naming `observed`.
    public init(_ observed: ObservedAddress) {
        self.init(address: observed.address, port: observed.port.map { Int($0) })
    }
}
