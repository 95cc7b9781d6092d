import Foundation
public import NIOCore

/// Everything that tunes a ``SignalServer``. Defaults suit an internet-facing server; tests shorten the times.
public struct SignalServerConfiguration: Sendable {
    /// Address to listen on; port 0 picks a free port (read it from ``SignalServer/waitUntilListening()``).
    public var host: String = "127.0.0.1"
    public var port: Int = 7447
    /// A second port on `host` that answers `GET /v1/observed` over plain HTTP, for clients to tell a symmetric NAT
    /// from an endpoint-independent one (docs/nat.md); nil: none; 0: a free port.
    public var probePort: Int?
    /// Directory of the SQLite database (bans, failure counts, configuration) and the self-signed certificate.
    public var dataDirectory: String
    /// TLS, if any.
    public var tls: TLSMode = .none
    /// The organisation join key; when set, every `hello` must carry a proof of it.
    public var joinKey: [UInt8]?

    /// Largest WebSocket frame accepted (a bigger one closes the connection with 1009).
    public var maxFrameSize: Int = 64 * 1024
    /// Largest JSON text message accepted.
    public var maxJSONBytes: Int = 8 * 1024
    /// Time a connection has to complete `hello` after its WebSocket upgrade before it is closed.
    public var helloTimeout: Duration = .seconds(10)
    /// Time a new TCP connection has to complete its TLS handshake and send a whole HTTP request (the WebSocket
    /// upgrade or a `GET`); also how long a plain HTTP keep-alive connection may stay idle between requests.
    public var requestTimeout: Duration = .seconds(10)

    /// Open TCP connections from one client address (an IPv4 address, or an IPv6 /64), before and after the
    /// upgrade; more are closed at once. Tests and benchmarks that run many peers from 127.0.0.1 raise it.
    public var maxConnectionsPerAddress: Int = 256
    /// Open TCP connections in total. The server also keeps this under its open-file limit (less a reserve for the
    /// database and the listener), so a flood is refused before `accept` starts failing.
    public var maxConnections: Int = 100_000
    /// Swarm memberships of all connections from one client address together.
    public var maxMembershipsPerAddress: Int = 8192
    /// Bytes of announced addresses (the sum of their UTF-8 lengths over every membership) from one client address.
    public var maxAnnouncedBytesPerAddress: Int = 2 * 1024 * 1024
    /// Relay payload rate of all connections from one client address together (bytes per second).
    public var relayBytesPerSecondPerAddress: Double = 8 * 1024 * 1024
    /// Binary (relay) frames per second one connection may send, with a burst allowance; a faster sender is
    /// paused (its socket is not read) rather than closed. Each frame also costs `relayFrameOverhead` bytes of the
    /// byte-rate limits, so frames with an empty payload are not free.
    public var relayFramesPerSecond: Double = 2000
    public var relayFrameBurst: Double = 4000
    public var relayFrameOverhead: Int = 64
    /// Peer addresses (exact IP strings) of TLS-terminating proxies whose `X-Forwarded-For` header names the client.
    /// Connections from these addresses are not counted per address until the header says whose they are.
    public var trustedProxies: Set<String> = []
    /// Text messages per second a connection may send, with a burst allowance; more closes it.
    public var messagesPerSecond: Double = Self.defaultMessagesPerSecond
    public var messageBurst: Double = Self.defaultMessageBurst
    public static let defaultMessagesPerSecond: Double = 20
    public static let defaultMessageBurst: Double = 60
    /// Limits per connection.
    public var maxSwarmsPerConnection: Int = 1024
    public var maxRelaysPerConnection: Int = 16
    public var maxAddresses: Int = 16
    public var maxAddressLength: Int = 255
    /// Candidate peers returned by `joined` (a random sample when the swarm is larger).
    public var maxCandidates: Int = 64
    /// Control messages queued for a slow connection before it is closed.
    public var outboxLimit: Int = 4096

    /// Byte rate of one relay stream (each direction shares it) and of all relays together.
    public var relayBytesPerSecond: Double = 4 * 1024 * 1024
    public var globalRelayBytesPerSecond: Double = 64 * 1024 * 1024

    /// Brute-force protection: failures (bad hello proof, bad join key, bad swarm proof) per address within
    /// `failureWindow`; from `delayThreshold` on each refusal is delayed by `failureDelay`; at `banThreshold`
    /// the address is banned for `banDuration`.
    public var delayThreshold: Int = 5
    public var failureDelay: Duration = .seconds(1)
    public var banThreshold: Int = 20
    public var failureWindow: Duration = .seconds(3600)
    public var banDuration: Duration = .seconds(3600)

    /// Pending-connection queue of the listener (the kernel caps it at net.core.somaxconn). Large, because after a
    /// restart every peer reconnects within a few hundred milliseconds.
    public var backlog: Int = 4096

    /// WebSocket ping interval (a peer that does not answer is dropped).
    public var pingInterval: Duration = .seconds(30)

    /// The other servers of the federation (`--federation FILE`): witnesses of this server's version log, and logs
    /// this server witnesses.
    public var federation = Federation()
    /// Distinct witness cosignatures a checkpoint needs before it is published; nil means every listed witness.
    public var witnessQuorum: Int?
    /// How far a version entry's time may be from the server's clock, seconds.
    public var maxClockSkew: Int64 = 300
    /// How often the log checks whether it has a new checkpoint to get cosigned and publish.
    public var publishInterval: Duration = .milliseconds(250)
    /// The server's own Nextcloud account, through which devices enroll (docs/proofs.md §3); nil: devices are
    /// enrolled only by an operator (`harp-cli signal enroll`).
    public var nextcloud: NextcloudAccount?
    /// Enrollment challenges outstanding at once, and how long each stays valid (seconds).
    public var maxEnrollmentNonces: Int = 4096
    public var enrollmentNonceLifetime: Int64 = 300
    /// How long each request to Nextcloud during an enrollment may take.
    public var nextcloudTimeout: Duration = .seconds(10)

    /// Requests to the version log's endpoints (`/v1/log/*`) per second from one client address, with a burst
    /// allowance; more are answered 429. An enrollment costs ten.
    public var logRequestsPerSecondPerAddress: Double = 200
    public var logRequestBurst: Double = 800
    /// `GET /v1/observed` (on both observation ports): requests per second per client address, and the burst.
    public var observedRequestsPerSecondPerAddress: Double = 2
    public var observedRequestBurst: Double = 20

    /// The name of a new log key (its origin); nil for `harp-` and random digits. Existing keys keep their names.
    public var logKeyName: String?

    /// Test hook: called with every relayed payload (after the stream id) as the server forwards it.
    public var relayObserver: (@Sendable (UInt32, ByteBuffer) -> Void)?

    public init(dataDirectory: String) {
        self.dataDirectory = dataDirectory
    }
}

/// How the server speaks TLS.
public enum TLSMode: Sendable, Equatable {
    /// Plain `ws://` (for loopback, or behind a TLS-terminating proxy).
    case none
    /// PEM certificate chain and private key files.
    case files(certificate: String, key: String)
    /// A self-signed certificate created on first start and kept in the data directory.
    case selfSigned
}

extension Duration {
    var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
