public import NIOCore

/// One peer wire message (docs/protocol.md §5). Every message travels as
/// `u32 length | u8 version | u8 type | body` inside the decrypted Noise stream.
public enum WireMessage: Equatable, Sendable {
    /// First message each side sends after the handshake.
    case hello(Hello)
    /// Sent when nothing else was sent for a while; never forwarded to the application.
    case keepAlive
    /// The sender is closing the connection, and why.
    case goodbye(GoodbyeReason)
    case choke
    case unchoke
    case interested
    case notInterested
    /// Which chunks of the version the sender has (bit i of byte i/8, most significant bit first).
    case bitfield(Bitfield)
    /// The sender now has chunk `index`.
    case have(chunk: UInt32)
    /// Please send `length` bytes of chunk `chunk` from `offset`.
    case request(BlockRequest)
    /// The bytes of a block.
    case piece(Piece)
    /// Never mind an earlier request.
    case cancel(BlockRequest)
    /// Please send page `page` of the manifest.
    case manifestRequest(page: UInt32)
    /// One page of the manifest.
    case manifestPage(ManifestPage)
    /// Addresses of other swarm members.
    case peerExchange([PeerAddress])
    /// Opens channel `channel` for another swarm on this connection (docs/protocol.md §5.4).
    case attach(Attach)
    /// Accepts an `attach`.
    case attached(Attached)
    /// Refuses an `attach`, or ends an attached channel (and answers the peer's `detach`).
    case detach(channel: UInt16, reason: GoodbyeReason)
    /// The messages after it, until the next `channel`, belong to channel `channel` (0: the connection's own swarm).
    /// Written and consumed by `PeerProtocolHandler` only.
    case channel(UInt16)
    /// In memory only, never on the wire as such: `message` on channel `channel` (not 0). The application writes
    /// it to send on an attached channel (the protocol handler puts a `channel` message before it when the channel
    /// changes), and reads it for each message that arrived on one.
    indirect case onChannel(UInt16, WireMessage)

    /// The one-byte type codes (docs/protocol.md §5.2).
    public enum Kind: UInt8, Sendable, CaseIterable {
        case keepAlive = 0x00, hello = 0x01, goodbye = 0x02, choke = 0x03, unchoke = 0x04
        case interested = 0x05, notInterested = 0x06, bitfield = 0x07, have = 0x08, request = 0x09
        case piece = 0x0A, cancel = 0x0B, manifestRequest = 0x0C, manifestPage = 0x0D, peerExchange = 0x0E
        case attach = 0x0F, attached = 0x10, detach = 0x11, channel = 0x12
    }

    /// This message's type code.
    public var kind: Kind {
        switch self {
        case .hello: return .hello
        case .keepAlive: return .keepAlive
        case .goodbye: return .goodbye
        case .choke: return .choke
        case .unchoke: return .unchoke
        case .interested: return .interested
        case .notInterested: return .notInterested
        case .bitfield: return .bitfield
        case .have: return .have
        case .request: return .request
        case .piece: return .piece
        case .cancel: return .cancel
        case .manifestRequest: return .manifestRequest
        case .manifestPage: return .manifestPage
        case .peerExchange: return .peerExchange
        case .attach: return .attach
        case .attached: return .attached
        case .detach: return .detach
        case .channel: return .channel
        case .onChannel(_, let message): return message.kind
        }
    }
}

/// The hard limits of the wire protocol. Each is checked on decode and on encode.
public enum WireLimits {
    /// The largest message (version + type + body), excluding its 4-byte length prefix: 256 KiB.
    public static let maxMessageLength = 256 * 1024
    /// The largest block a `request` may ask for and a `piece` may carry: 128 KiB.
    public static let maxBlockLength: UInt32 = 128 * 1024
    /// The most entries in one manifest page.
    public static let maxManifestPageEntries = 4096
    /// The most addresses in one peer exchange message.
    public static let maxPeerExchangeAddresses = 64
    /// The most chunks a bitfield may describe (fits in one message).
    public static let maxBitfieldChunks: UInt32 = UInt32(maxMessageLength - 6 - 8) * 8
    /// Channel numbers are below this (channel 0 is the connection's own swarm): at most 63 other swarms on one
    /// connection.
    public static let maxChannels: UInt16 = 64
}

/// The `attach` message: the sender asks to carry the swarm `swarmID` on channel `channel` of this connection, and
/// proves that it holds that swarm's key K (docs/protocol.md §5.4).
public struct Attach: Equatable, Sendable {
    /// 1 ..< `WireLimits.maxChannels`; odd when the sender was the Noise initiator, even otherwise.
    public var channel: UInt16
    /// The swarm id S (32 bytes).
    public var swarmID: [UInt8]
    /// The sender's `hello` capability bits for this swarm.
    public var capabilities: UInt64
    /// HMAC-SHA256 under K of the handshake hash, the role, the channel and S (`ChannelProof`).
    public var proof: [UInt8]

    public init(channel: UInt16, swarmID: [UInt8], capabilities: UInt64, proof: [UInt8]) {
        self.channel = channel
        self.swarmID = swarmID
        self.capabilities = capabilities
        self.proof = proof
    }
}

/// The `attached` message: the answer to an `attach` by a side that holds the swarm's key.
public struct Attached: Equatable, Sendable {
    public var channel: UInt16
    /// The sender's `hello` capability bits for this swarm.
    public var capabilities: UInt64
    /// The responder's proof (`ChannelProof`).
    public var proof: [UInt8]

    public init(channel: UInt16, capabilities: UInt64, proof: [UInt8]) {
        self.channel = channel
        self.capabilities = capabilities
        self.proof = proof
    }
}

/// The `hello` message.
public struct Hello: Equatable, Sendable {
    /// The highest protocol version the sender speaks (1).
    public var protocolVersion: UInt16
    /// Capability bits (`Capability`); unknown bits are ignored.
    public var capabilities: UInt64

    /// The capability bits defined so far.
    public enum Capability {
        /// The sender is a complete seeder that is super-seeding: it announces chunks one at a time, but has them
        /// all. A fetcher counts it as a source of every chunk (so it does not ask the server for them) and requests
        /// only the chunks it announced.
        public static let superSeeding: UInt64 = 1 << 0
        /// The sender can carry other swarms on this connection (`attach`, docs/protocol.md §5.4).
        public static let channels: UInt64 = 1 << 1
    }
    /// The sender's Ed25519 device key; must equal the key proven in the handshake.
    public var deviceKey: [UInt8]
    /// The TCP port the sender accepts peer connections on, or 0.
    public var listenPort: UInt16

    public init(
        protocolVersion: UInt16 = UInt16(SwarmKit.protocolVersion), capabilities: UInt64 = 0,
        deviceKey: [UInt8], listenPort: UInt16 = 0
    ) {
        self.protocolVersion = protocolVersion
        self.capabilities = capabilities
        self.deviceKey = deviceKey
        self.listenPort = listenPort
    }
}

/// Which chunks a peer has.
public struct Bitfield: Equatable, Sendable {
    /// How many chunks the version has.
    public let chunkCount: UInt32
    /// `ceil(chunkCount / 8)` bytes, bit 7 of byte 0 is chunk 0; padding bits are zero.
    public private(set) var bytes: [UInt8]

    /// An empty bitfield of `chunkCount` chunks.
    public init(chunkCount: UInt32) {
        self.chunkCount = chunkCount
        self.bytes = [UInt8](repeating: 0, count: Int((UInt64(chunkCount) + 7) / 8))
    }

    /// Validated constructor used by the decoder.
    init?(chunkCount: UInt32, bytes: [UInt8]) {
        guard bytes.count == Int((UInt64(chunkCount) + 7) / 8) else { return nil }
        let spare = Int(UInt64(bytes.count) * 8 - UInt64(chunkCount))
        if spare > 0, let last = bytes.last, last & UInt8((1 << spare) - 1) != 0 { return nil }
        self.chunkCount = chunkCount
        self.bytes = bytes
    }

    /// Whether chunk `index` is set; false outside the range.
    public func contains(_ index: UInt32) -> Bool {
        guard index < chunkCount else { return false }
        return bytes[Int(index / 8)] & (0x80 >> UInt8(index % 8)) != 0
    }

    /// Sets chunk `index` (which must be in range).
    public mutating func insert(_ index: UInt32) {
        precondition(index < chunkCount, "chunk index out of range")
        bytes[Int(index / 8)] |= 0x80 >> UInt8(index % 8)
    }
}

/// A block of a chunk: used by `request` and `cancel`.
public struct BlockRequest: Hashable, Sendable, Codable {
    public var chunk: UInt32
    public var offset: UInt32
    /// 1 ... `WireLimits.maxBlockLength`.
    public var length: UInt32

    public init(chunk: UInt32, offset: UInt32, length: UInt32) {
        self.chunk = chunk
        self.offset = offset
        self.length = length
    }
}

/// The bytes of a block.
public struct Piece: Equatable, Sendable {
    public var chunk: UInt32
    public var offset: UInt32
    /// 1 ... `WireLimits.maxBlockLength` bytes.
    public var data: ByteBuffer

    public init(chunk: UInt32, offset: UInt32, data: ByteBuffer) {
        self.chunk = chunk
        self.offset = offset
        self.data = data
    }
}

/// A chunk's SHA-256 hash (32 bytes) and its length, as listed in the manifest.
public struct ManifestEntry: Equatable, Sendable {
    public var hash: [UInt8]
    public var length: UInt32

    public init(hash: [UInt8], length: UInt32) {
        precondition(hash.count == 32, "a chunk hash is 32 bytes")
        self.hash = hash
        self.length = length
    }
}

/// One page of a version's manifest.
public struct ManifestPage: Equatable, Sendable, Codable {
    public var page: UInt32
    public var pageCount: UInt32
    public var fileSize: UInt64
    public var chunkCount: UInt32
    /// At most `WireLimits.maxManifestPageEntries` entries.
    public var entries: [ManifestEntry]

    public init(page: UInt32, pageCount: UInt32, fileSize: UInt64, chunkCount: UInt32, entries: [ManifestEntry]) {
        self.page = page
        self.pageCount = pageCount
        self.fileSize = fileSize
        self.chunkCount = chunkCount
        self.entries = entries
    }
}

/// An IPv4 or IPv6 address and TCP port of another swarm member.
public struct PeerAddress: Hashable, Sendable {
    /// 4 bytes (IPv4) or 16 bytes (IPv6), network order.
    public var ip: [UInt8]
    public var port: UInt16

    public init?(ip: [UInt8], port: UInt16) {
        guard ip.count == 4 || ip.count == 16 else { return nil }
        self.ip = ip
        self.port = port
    }
}

/// Why a connection is closed; sent in `goodbye`. Unknown codes are kept as they are.
public struct GoodbyeReason: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let normal = GoodbyeReason(rawValue: 0)
    public static let malformedMessage = GoodbyeReason(rawValue: 1)
    public static let decryptionFailed = GoodbyeReason(rawValue: 2)
    public static let unknownMessage = GoodbyeReason(rawValue: 3)
    public static let oversized = GoodbyeReason(rawValue: 4)
    public static let chunkNotAnnounced = GoodbyeReason(rawValue: 5)
    public static let idleTimeout = GoodbyeReason(rawValue: 6)
    public static let unsupportedVersion = GoodbyeReason(rawValue: 7)
    public static let deviceKeyMismatch = GoodbyeReason(rawValue: 8)
    public static let helloRequired = GoodbyeReason(rawValue: 9)
    public static let shuttingDown = GoodbyeReason(rawValue: 10)
    public static let duplicateConnection = GoodbyeReason(rawValue: 11)
    public static let badChunk = GoodbyeReason(rawValue: 12)
    public static let internalError = GoodbyeReason(rawValue: 13)
    /// (for `detach`) this side does not serve the swarm an `attach` named, or its proof did not verify.
    public static let notServed = GoodbyeReason(rawValue: 14)

    public var description: String {
        let names = [
            "normal", "malformed-message", "decryption-failed", "unknown-message", "oversized",
            "chunk-not-announced", "idle-timeout", "unsupported-version", "device-key-mismatch",
            "hello-required", "shutting-down", "duplicate-connection", "bad-chunk", "internal-error", "not-served",
        ]
        return Int(rawValue) < names.count ? names[Int(rawValue)] : "code-\(rawValue)"
    }
}
