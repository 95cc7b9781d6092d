/// SwarmKit: device identity and peer crypto (libsodium), the Noise-encrypted wire protocol over SwiftNIO,
/// and the swarm engine (piece picking, pipelining, choking, the Nextcloud server as web seed), and seeding.
///
/// The wire protocol and crypto arrive with issue 5, the engine with issue 7.
public enum SwarmKit {}
