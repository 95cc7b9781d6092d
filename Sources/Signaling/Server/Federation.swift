public import VersionLog

/// The other servers of a federation (`harp-cli signal serve --federation FILE`): each runs its own version log and
/// witnesses this server's checkpoints, and this server witnesses theirs.
///
/// The file has one line per other server, `server URL LOG_VKEY WITNESS_VKEY` (the log key of type `0x01`, the
/// witness key of type `0x04`); `#` starts a comment, blank lines are ignored. Errors name the line.
public struct Federation: Sendable, Equatable {
    /// One other server.
    public struct Server: Sendable, Equatable {
        /// Its base URL (`http://` or `https://`), to which `/add-checkpoint` is appended.
        public var url: String
        /// Its log key: this server trusts checkpoints of this origin when it acts as a witness.
        public var logKey: NoteVerifierKey
        /// Its witness key: its cosignatures of this server's checkpoints count towards the quorum.
        public var witnessKey: NoteVerifierKey

        public init(url: String, logKey: NoteVerifierKey, witnessKey: NoteVerifierKey) {
            self.url = url
            self.logKey = logKey
            self.witnessKey = witnessKey
        }
    }

    /// A line of the file that is not valid.
    public struct ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "federation file line \(line): \(message)" }
    }

    /// The largest file accepted, and the most servers.
    public static let maximumSize = 64 * 1024
    public static let maximumServers = 64

    public var servers: [Server]

    public init(servers: [Server] = []) { self.servers = servers }

    /// Parses the file's text.
    public init(parsing text: String) throws(ParseError) {
        guard text.utf8.count <= Self.maximumSize else {
            throw ParseError(line: 0, message: "over \(Self.maximumSize) bytes")
        }
        var servers: [Server] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            if fields.isEmpty { continue }
            func fail(_ message: String) -> ParseError { ParseError(line: number + 1, message: message) }
            guard fields[0] == "server" else { throw fail("unknown keyword '\(fields[0].prefix(40))'") }
            guard fields.count == 4 else { throw fail("expected: server URL LOG_VKEY WITNESS_VKEY") }
            let url = fields[1].hasSuffix("/") ? String(fields[1].dropLast()) : fields[1]
            guard url.hasPrefix("http://") || url.hasPrefix("https://"), url.utf8.count <= 2048 else {
                throw fail("the URL must start with http:// or https://")
            }
            let logKey: NoteVerifierKey
            let witnessKey: NoteVerifierKey
            do {
                logKey = try NoteVerifierKey(vkey: fields[2])
                witnessKey = try NoteVerifierKey(vkey: fields[3])
            } catch {
                throw fail("bad key: \(error)")
            }
            guard logKey.type == .ed25519 else { throw fail("the log key must be an Ed25519 note key (type 0x01)") }
            guard witnessKey.type == .cosignatureV1 else {
                throw fail("the witness key must be a cosignature/v1 key (type 0x04)")
            }
            guard !servers.contains(where: { $0.witnessKey.publicKey == witnessKey.publicKey }) else {
                throw fail("this witness key is already listed")
            }
            guard servers.count < Self.maximumServers else { throw fail("more than \(Self.maximumServers) servers") }
            servers.append(Server(url: url, logKey: logKey, witnessKey: witnessKey))
        }
        self.servers = servers
    }
}
