public import NIOCore

/// Why a peer connection could not be opened or ended early (besides `NoiseError` from the handshake
/// and `WireProtocolError` for a peer that broke the protocol).
public enum PeerConnectionError: Error, Equatable, Sendable {
    /// The handshake did not finish in time.
    case handshakeTimeout(TimeAmount)
    /// The connection closed before the handshake finished (often: the peer does not know K).
    case closedDuringHandshake
    /// The connection closed before the peer's `hello` arrived.
    case closedBeforeHello
    /// A message was written before the handshake finished (a programmer error in the caller).
    case handshakeNotComplete
    /// The connection's preamble named no swarm this process serves, or was malformed (docs/protocol.md §3.0).
    case unknownSwarm
    /// The peer said goodbye.
    case peerSaidGoodbye(GoodbyeReason)
}
