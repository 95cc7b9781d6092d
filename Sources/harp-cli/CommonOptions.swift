import ArgumentParser
import Foundation
import HarpClient
import Logging
import NextcloudClient
import SwarmKit

/// Which Nextcloud account to use. Each value is taken from the flag, else the environment
/// (HARP_SERVER, HARP_USER, HARP_APP_PASSWORD), else the stored login.
struct AccountOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp("Nextcloud server URL (default: $HARP_SERVER, then the stored login).", valueName: "url"))
    var server: String?

    @Option(help: ArgumentHelp("Nextcloud user name (default: $HARP_USER, then the stored login).", valueName: "user"))
    var user: String?

    @Option(
        name: .customLong("app-password"),
        help: ArgumentHelp(
            "App password (default: $HARP_APP_PASSWORD, then the stored login). Prefer the environment: flags show up in `ps`.",
            valueName: "password"))
    var appPassword: String?
}

/// Where the configuration lives and how much to log.
struct ConfigOptions: ParsableArguments {
    @Option(
        name: .customLong("config-dir"),
        help: ArgumentHelp(
            "Configuration folder (default: $HARP_CONFIG_DIR, else $XDG_CONFIG_HOME/harp, else ~/.config/harp).",
            valueName: "dir"))
    var configDirectory: String?

    @Flag(name: .shortAndLong, help: "Log requests to standard error (never with credentials).")
    var verbose = false

    var store: CredentialStore {
        configDirectory.map { CredentialStore(directory: URL(fileURLWithPath: $0)) } ?? CredentialStore()
    }

    var logger: Logger {
        var logger = Logger(label: "harp") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = verbose ? .debug : .warning
        if let level = ProcessInfo.processInfo.environment["HARP_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) {
            logger.logLevel = level
        }
        return logger
    }

    var transportOptions: TransportOptions {
        var options = TransportOptions()
        options.userAgent = "harp-cli (\(ProcessInfo.processInfo.hostName))"
        return options
    }
}

/// `--json`: one JSON object per line instead of text.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print one JSON object per line.")
    var json = false

    @Flag(name: .shortAndLong, help: "Print nothing but errors.")
    var quiet = false
}

extension ConfigOptions {
    /// config.toml of the configuration folder (empty when there is none).
    func harpConfig() throws -> HarpConfig {
        try HarpConfig.load(from: store.directory)
    }

    /// A client for the account the flags, environment and stored login describe (config.toml's server and user
    /// fill in what the stored login lacks).
    func client(
        _ account: AccountOptions, concurrentTransfers: Int = TransportOptions.defaultConcurrentTransfers
    ) throws -> NextcloudClient {
        var stored = try store.load()
        let file = try harpConfig()
        if stored.server == nil { stored.server = file.server }
        if stored.user == nil { stored.user = file.user }
        let credentials = try Credentials.resolve(
            server: account.server, user: account.user, appPassword: account.appPassword, stored: stored)
        var options = transportOptions
        options.maximumConcurrentTransfers = concurrentTransfers
        return NextcloudClient(credentials: credentials, options: options, logger: logger)
    }
}

/// Writes one JSON object as a line on standard output.
func printJSONLine(_ object: [String: Any]) {
    guard
        let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    else { return }
    print(String(decoding: data, as: UTF8.self))
}

/// `--record-engine FILE` (not in `--help`): every swarm engine of the command records the events fed to it and the
/// actions it took into FILE (mode 0600), for `harp-cli debug replay`.
struct RecordEngineOptions: ParsableArguments {
    @Option(
        name: .customLong("record-engine"),
        help: ArgumentHelp(
            "Record every event fed to the swarm engine and every action it took into FILE (for `debug replay`).",
            valueName: "FILE", visibility: .hidden))
    var path: String?

    /// The recorder writing to the file, or nil without the option.
    func recorder() throws -> EngineRecorder? { try path.map { try EngineRecorder(path: $0) } }
}
