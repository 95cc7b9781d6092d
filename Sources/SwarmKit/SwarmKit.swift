/// SwarmKit: device identity and peer crypto (libsodium), the Noise-encrypted wire protocol over SwiftNIO,
/// and (later) the swarm engine.
///
/// - `DeviceIdentity`, `SwarmKeys`: who a peer is and which swarm it may join (docs/protocol.md §2).
/// - `NoiseHandshakeState`, `NoiseCipherState`: Noise revision 34, checked against published vectors.
/// - `WireMessage`, `FrameDecoder`, `MessageParser`, `PeerChannel`: the peer wire protocol over SwiftNIO.
public enum SwarmKit {
    /// The wire protocol version carried in every message header and in `hello`.
    public static let protocolVersion: UInt8 = 1
}
