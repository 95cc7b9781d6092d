import ArgumentParser
import Foundation
import Logging
import Signaling

/// `harp-cli signal ...`: the self-hosted signaling server.
struct SignalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signal",
        abstract: "Run the signaling server where peers of a swarm meet.",
        subcommands: [Serve.self]
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
                  HARP_SIGNAL_JOIN_KEY=s3cret harp-cli signal serve --tls-cert cert.pem --tls-key key.pem
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

        @Option(help: "Organisation join key every peer must prove (env HARP_SIGNAL_JOIN_KEY). Never logged.")
        var joinKey: String?

        @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
        var logLevel = "info"

        func validate() throws {
            guard parseListen() != nil else { throw ValidationError("--listen must be HOST:PORT, got '\(listen)'") }
            if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
            if tlsCert != nil, tlsSelfSigned {
                throw ValidationError("choose --tls-cert/--tls-key or --tls-self-signed")
            }
            if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("unknown --log-level '\(logLevel)'") }
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
            guard let (host, port) = parseListen() else { throw ValidationError("bad --listen") }
            let environment = ProcessInfo.processInfo.environment
            let dataDirectory =
                data
                ?? (environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 }
                    ?? (FileManager.default.homeDirectoryForCurrentUser.path + "/.local/share")) + "/harp/signal"
            var configuration = SignalServerConfiguration(dataDirectory: dataDirectory)
            configuration.host = host
            configuration.port = port
            if let tlsCert, let tlsKey {
                configuration.tls = .files(certificate: tlsCert, key: tlsKey)
            } else if tlsSelfSigned {
                configuration.tls = .selfSigned
            }
            if let key = joinKey ?? environment["HARP_SIGNAL_JOIN_KEY"], !key.isEmpty {
                configuration.joinKey = Array(key.utf8)
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
                    ])
            }
        }
    }
}
