import ArgumentParser
import DevCloud
import Dispatch
import Foundation
import HarpClient
import Logging

/// `harp-cli devcloud ...`: the Nextcloud-compatible test server.
struct DevCloudCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devcloud",
        abstract: "A small Nextcloud-compatible server for tests and the local demo (never for production).",
        subcommands: [Serve.self]
    )

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve DevCloud on a loopback address until SIGINT or SIGTERM.",
            discussion: """
                The first line printed on standard output is the server's base URL (http://127.0.0.1:PORT); logs go to
                standard error. Test-only admin endpoints live under /harp-devcloud/ (see docs/devcloud.md).

                Example:
                  harp-cli devcloud serve --data /tmp/dc --user alice:secret --user bob:secret \\
                      --share alice:/Footage:bob:1 --auto-grant alice
                """
        )

        @Option(
            name: .long,
            help: "Data directory (files, versions, uploads and devcloud.sqlite). Overrides the config file's.")
        var data: String?

        @Option(
            name: .long,
            help: "Address to listen on, HOST:PORT; loopback only (see --allow-non-loopback), port 0 picks a free port."
        )
        var listen: String = "127.0.0.1:0"

        @Flag(
            name: .customLong("allow-non-loopback"),
            help: """
                Allow a --listen address other than loopback (e.g. 0.0.0.0). For testbeds in network namespaces only \
                (bench/swarm); the admin endpoints still answer loopback peers only.
                """)
        var allowNonLoopback = false

        @Option(name: .long, help: "A JSON configuration file (DevCloudConfiguration).")
        var config: String?

        @Option(name: .long, help: "An account as NAME:PASSWORD (repeatable).")
        var user: [String] = []

        @Option(
            name: .long,
            help:
                "A user share as OWNER:PATH:SHAREE:PERMS, PERMS in OCS bits 1..31 (repeatable); the folder is created if missing."
        )
        var share: [String] = []

        @Option(
            name: .customLong("egress-limit"),
            help: "Limit file bodies to this many bytes per second, shared by all connections.")
        var egressLimit: Int?

        @Option(name: .customLong("auto-grant"), help: "Grant every Login Flow v2 at once for this user (tests, demo).")
        var autoGrant: String?

        func validate() throws {
            guard data != nil || config != nil else { throw ValidationError("give --data DIR or --config FILE") }
            guard Self.splitListen(listen) != nil else { throw ValidationError("--listen must be HOST:PORT") }
            for entry in user where entry.split(separator: ":", maxSplits: 1).count != 2 {
                throw ValidationError("--user must be NAME:PASSWORD")
            }
            for entry in share where Self.parseShare(entry) == nil {
                throw ValidationError("--share must be OWNER:PATH:SHAREE:PERMS")
            }
        }

        static func splitListen(_ value: String) -> (String, Int)? {
            guard let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]) else {
                return nil
            }
            var host = String(value[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            return (host, port)
        }

        static func parseShare(_ value: String) -> DevCloudConfiguration.Share? {
            let parts = value.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 4, let bits = Int(parts[3]) else { return nil }
            return DevCloudConfiguration.Share(owner: parts[0], path: parts[1], sharee: parts[2], permissions: bits)
        }

        func run() async throws {
            var configuration =
                try config.map { try DevCloudConfiguration.load(path: $0) }
                ?? DevCloudConfiguration(dataDirectory: data ?? ".")
            if let data { configuration.dataDirectory = data }
            for entry in user {
                let parts = entry.split(separator: ":", maxSplits: 1).map(String.init)
                configuration.users.append(.init(name: parts[0], password: parts[1]))
            }
            configuration.shares += share.compactMap(Self.parseShare)
            if let egressLimit { configuration.egressBytesPerSecond = egressLimit }
            if let autoGrant { configuration.autoGrantLoginFlowUser = autoGrant }
            let logger = Logger(label: "devcloud") { StreamLogHandler.standardError(label: $0) }
            let server = DevCloudServer(configuration: configuration, logger: logger)
            let (host, port) = Self.splitListen(listen) ?? ("127.0.0.1", 0)
            _ = try await server.start(host: host, port: port, allowNonLoopback: allowNonLoopback)
            // Unbuffered, so a parent process reading the first line sees it at once.
            FileHandle.standardOutput.write(Data((server.baseURL + "\n").utf8))
            await Self.waitForTermination()
            await server.stop()
        }

        /// Returns on SIGINT or SIGTERM.
        static func waitForTermination() async {
            let (stream, continuation) = AsyncStream<Void>.makeStream()
            var sources: [any DispatchSourceSignal] = []
            for signalNumber in [SIGINT, SIGTERM] {
                signal(signalNumber, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .main)
                source.setEventHandler { continuation.yield() }
                source.resume()
                sources.append(source)
            }
            for await _ in stream { break }
            sources.forEach { $0.cancel() }
        }
    }
}
