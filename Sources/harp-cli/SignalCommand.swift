import ArgumentParser
import Foundation
import HarpClient
import Logging
import SignalingProtocol
import SignalingServer

/// `harp-cli signal ...`: the self-hosted signaling server.
struct SignalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signal",
        abstract: "Run the signaling server where peers of a swarm meet.",
        subcommands: [Serve.self, Keys.self, Enroll.self]
    )

    /// `harp-cli signal serve`.
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve",
            abstract: "Serve peers over WebSocket, with /healthz and /metrics.",
            discussion: """
                Prints the WebSocket URL as the first line of standard output once listening (useful with port 0), \
                then, with TLS, the certificate's SHA-256 fingerprint for clients to pin. Logs go to standard error. \
                SIGINT or SIGTERM stops the server cleanly. See docs/operations-signaling.md.

                Examples:
                  harp-cli signal serve
                  harp-cli signal serve --listen 0.0.0.0:7447 --data /var/lib/harp/signal --tls-self-signed
                  HARP_SIGNAL_JOIN_KEY=s3cret harp-cli signal serve --listen 0.0.0.0:7447 --tls-cert c.pem --tls-key k.pem
                  harp-cli signal serve --listen [::]:7447 --join-key-file /etc/harp/join-key --tls-self-signed

                On an address other than loopback the server needs a join key (HARP_SIGNAL_JOIN_KEY or \
                --join-key-file) or an explicit --open: without a key anyone can join swarms and use the relay.
                """
        )

        @Option(help: "Address to listen on, HOST:PORT (port 0 picks a free port).")
        var listen = "127.0.0.1:7447"

        @Option(help: "Directory for the server's SQLite database and self-signed certificate.", completion: .directory)
        var data: String?

        @Option(help: "PEM certificate chain for TLS (with --tls-key).", completion: .file())
        var tlsCert: String?

        @Option(help: "PEM private key for TLS (with --tls-cert).", completion: .file())
        var tlsKey: String?

        @Flag(help: "Use a self-signed certificate made on first start and kept in --data; prints its fingerprint.")
        var tlsSelfSigned = false

        @Option(
            help: ArgumentHelp(
                "File holding the organisation join key every peer must prove (its first line; never logged).",
                discussion: "Or set HARP_SIGNAL_JOIN_KEY. There is no flag for the key itself: flags show in ps."),
            completion: .file())
        var joinKeyFile: String?

        @Flag(help: "Serve a non-loopback address without a join key: anyone may join swarms and use the relay.")
        var open = false

        @Option(help: "Open connections allowed from one client address (IPv4, or IPv6 /64).")
        var maxConnectionsPerAddress = 256

        @Option(help: "Open connections allowed in total (also kept under the open-file limit).")
        var maxConnections = 100_000

        @Option(help: "Swarm memberships allowed from one client address, over all its connections.")
        var maxMembershipsPerAddress = 8192

        @Option(
            help: ArgumentHelp(
                "Address of a TLS-terminating proxy whose X-Forwarded-For names the client (repeatable).",
                discussion: "Without it, every connection through a proxy counts as the proxy's address."))
        var trustedProxy: [String] = []

        @Option(
            help: ArgumentHelp(
                "A second port on the --listen host that tells clients their address (plain HTTP, 0: a free one).",
                discussion: """
                    Clients compare what it and the main port saw of their peer port to tell a symmetric NAT from \
                    an endpoint-independent one (docs/nat.md). Open it in the firewall like the main port.
                    """))
        var probePort: Int?

        @Option(
            help: ArgumentHelp(
                "File listing the other servers of the federation: lines 'server URL LOG_VKEY WITNESS_VKEY'.",
                discussion: "They witness this server's version log and it witnesses theirs (docs/proofs.md)."),
            completion: .file())
        var federation: String?

        @Option(help: "Witness cosignatures a checkpoint needs before it is published (default: every listed server).")
        var witnessQuorum: Int?

        @Option(
            help: ArgumentHelp(
                "The server's own Nextcloud account, through which devices enroll in the version log (its URL).",
                discussion: """
                    The account comes from HARP_SIGNAL_NC_USER and HARP_SIGNAL_NC_APP_PASSWORD, or from \
                    --nextcloud-credentials. Devices share a signed challenge with it; it never holds a user's \
                    password (docs/proofs.md §3).
                    """))
        var nextcloud: String?

        @Option(
            help: ArgumentHelp(
                "A 0600 file with the lines 'user NAME' and 'app_password SECRET' for --nextcloud.",
                discussion: "There is no flag for the app password itself: flags show in ps."),
            completion: .file())
        var nextcloudCredentials: String?

        @Option(
            help: ArgumentHelp(
                "Version-log requests (/v1/log/*) per second from one client address; bursts of four times that.",
                discussion: "Past it the server answers 429; an enrollment counts as ten requests."))
        var logRequestsPerSecond: Double = 200

        @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
        var logLevel = "info"

        func validate() throws {
            guard parseListen() != nil else { throw ValidationError("--listen must be HOST:PORT, got '\(listen)'") }
            if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
            if tlsCert != nil, tlsSelfSigned {
                throw ValidationError("choose --tls-cert/--tls-key or --tls-self-signed")
            }
            if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("unknown --log-level '\(logLevel)'") }
            guard maxConnectionsPerAddress > 0, maxConnections > 0, maxMembershipsPerAddress > 0 else {
                throw ValidationError(
                    "--max-connections, --max-connections-per-address and --max-memberships-per-address must be positive"
                )
            }
            if let nextcloud {
                guard let url = URL(string: nextcloud), url.scheme == "http" || url.scheme == "https", url.host != nil
                else { throw ValidationError("--nextcloud must be an http:// or https:// URL") }
            } else if nextcloudCredentials != nil {
                throw ValidationError("--nextcloud-credentials needs --nextcloud")
            }
            guard logRequestsPerSecond > 0, logRequestsPerSecond.isFinite else {
                throw ValidationError("--log-requests-per-second must be positive")
            }
            if let witnessQuorum, witnessQuorum < 0 { throw ValidationError("--witness-quorum must not be negative") }
            for proxy in trustedProxy where !Self.isIPAddress(proxy) {
                throw ValidationError("--trusted-proxy must be an IP address, got '\(proxy)'")
            }
        }

        private static func isIPAddress(_ text: String) -> Bool {
            var v4 = in_addr()
            var v6 = in6_addr()
            return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
        }

        /// Loopback only: 127.0.0.0/8, ::1, localhost.
        static func isLoopback(_ host: String) -> Bool {
            if host == "localhost" || host == "::1" { return true }
            var v4 = in_addr()
            guard inet_pton(AF_INET, host, &v4) == 1 else { return false }
            return UInt32(bigEndian: v4.s_addr) >> 24 == 127
        }

        /// The join key from --join-key-file or HARP_SIGNAL_JOIN_KEY (the file wins); `nil` when neither is set.
        private func readJoinKey(_ environment: [String: String]) throws -> [UInt8]? {
            if let joinKeyFile {
                guard let data = FileManager.default.contents(atPath: joinKeyFile) else {
                    throw UsageError(
                        description: "cannot read --join-key-file \(joinKeyFile); check the path and its permissions")
                }
                let line = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first ?? ""
                guard !line.isEmpty else { throw UsageError(description: "--join-key-file \(joinKeyFile) is empty") }
                return Array(line.utf8)
            }
            if let key = environment["HARP_SIGNAL_JOIN_KEY"], !key.isEmpty { return Array(key.utf8) }
            return nil
        }

        private func parseListen() -> (host: String, port: Int)? {
            guard let colon = listen.lastIndex(of: ":") else { return nil }
            var host = String(listen[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty, let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port)
            else {
                return nil
            }
            return (host, port)
        }

        func run() async throws {
            try await runReportingErrors { try await serve() }
        }

        private func serve() async throws {
            guard let (host, port) = parseListen() else { throw ValidationError("bad --listen") }
            let environment = ProcessInfo.processInfo.environment
            let dataDirectory = data ?? BaseDirectories.dataHome(environment) + "/harp/signal"
            var configuration = SignalServerConfiguration(dataDirectory: dataDirectory)
            configuration.host = host
            configuration.port = port
            if let probePort {
                guard (0...65535).contains(probePort) else { throw ValidationError("--probe-port must be 0-65535") }
                configuration.probePort = probePort
            }
            if let tlsCert, let tlsKey {
                configuration.tls = .files(certificate: tlsCert, key: tlsKey)
            } else if tlsSelfSigned {
                configuration.tls = .selfSigned
            }
            configuration.joinKey = try readJoinKey(environment)
            if configuration.joinKey == nil, !open, !Self.isLoopback(host) {
                throw UsageError(
                    description: """
                        refusing to serve \(listen) without a join key: anyone who can reach it could join swarms and use \
                        the relay. Set HARP_SIGNAL_JOIN_KEY or --join-key-file, or pass --open to serve it open on purpose.
                        """)
            }
            configuration.maxConnectionsPerAddress = maxConnectionsPerAddress
            configuration.maxConnections = maxConnections
            configuration.maxMembershipsPerAddress = maxMembershipsPerAddress
            configuration.trustedProxies = Set(trustedProxy)
            configuration.logRequestsPerSecondPerAddress = logRequestsPerSecond
            configuration.logRequestBurst = max(logRequestsPerSecond * 4, 20)
            if let federation {
                guard let data = FileManager.default.contents(atPath: federation) else {
                    throw UsageError(description: "cannot read --federation \(federation)")
                }
                do {
                    configuration.federation = try Federation(parsing: String(decoding: data, as: UTF8.self))
                } catch {
                    throw UsageError(description: "\(federation): \(error)")
                }
            }
            if let witnessQuorum {
                guard witnessQuorum <= configuration.federation.servers.count else {
                    throw UsageError(
                        description:
                            "--witness-quorum \(witnessQuorum) is more than the \(configuration.federation.servers.count) listed servers"
                    )
                }
                configuration.witnessQuorum = witnessQuorum
            }
            if let nextcloud, let url = URL(string: nextcloud) {
                if let nextcloudCredentials {
                    configuration.nextcloud = try NextcloudAccount.load(file: nextcloudCredentials, server: url)
                } else {
                    guard let user = environment["HARP_SIGNAL_NC_USER"], !user.isEmpty,
                        let password = environment["HARP_SIGNAL_NC_APP_PASSWORD"], !password.isEmpty
                    else {
                        throw UsageError(
                            description:
                                "--nextcloud needs HARP_SIGNAL_NC_USER and HARP_SIGNAL_NC_APP_PASSWORD, or --nextcloud-credentials"
                        )
                    }
                    configuration.nextcloud = NextcloudAccount(server: url, user: user, appPassword: password)
                }
            }
            var logger = Logger(label: "harp.signal") { StreamLogHandler.standardError(label: $0) }
            logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
            let server = try SignalServer(configuration: configuration, logger: logger)
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await server.runUntilSignalled() }
                let bound = try await server.waitUntilListening()
                let shownHost = host.contains(":") ? "[\(host)]" : host
                var lines = "\(server.scheme)://\(shownHost):\(bound)\(Signaling.webSocketPath)\n"
                if let fingerprint = server.certificateFingerprint { lines += "sha256 fingerprint: \(fingerprint)\n" }
                FileHandle.standardOutput.write(Data(lines.utf8))
                logger.info(
                    "signaling server listening",
                    metadata: [
                        "listen.port": "\(bound)", "data.dir": "\(dataDirectory)",
                        "join.key": "\(configuration.joinKey == nil ? "off" : "on")",
                        "max.connections.per.address": "\(maxConnectionsPerAddress)",
                        "nextcloud.user": "\(configuration.nextcloud?.user ?? "none")",
                    ])
            }
        }

    }
}
