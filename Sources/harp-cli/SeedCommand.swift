import ArgumentParser
import ChunkStore
import Foundation
import HarpClient
import Logging
import NextcloudClient
import SwarmKit

/// `harp-cli seed`: keep the files of a local folder that mirrors a Nextcloud folder available to peers.
struct SeedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seed",
        abstract: "Seed the files of a local folder that mirrors a Nextcloud folder, until interrupted.",
        discussion: """
            Every file under DIR whose counterpart under --remote has the same size is indexed (once; unchanged files \
            are not read again) and offered to the peers of its version. A file is seeded when its sidecar on the \
            server names the same content root. When there is no sidecar yet, harp publishes one (if you may write \
            the folder) only for bytes it knows are the server's: a file this device downloaded or uploaded and that \
            is unchanged since, or else after comparing every byte with the server's. A file that differs is \
            reported and not seeded; a file that changes while seeded stops being served at once. At each rescan, a \
            file that gained its own access rules stops being seeded and its sidecar is deleted. All files share one \
            signaling connection.

            Examples:
              harp-cli seed ~/Footage --remote /Footage --signal wss://signal.example.com/v1/ws
              HARP_SIGNAL=ws://127.0.0.1:7000/v1/ws harp-cli seed . --remote /Builds --rescan 10
            """)

    @Argument(help: ArgumentHelp("Local folder (default: the current folder).", valueName: "dir"))
    var directory: String = "."

    @Option(help: ArgumentHelp("The Nextcloud folder DIR mirrors (default: /NAME-OF-DIR).", valueName: "path"))
    var remote: String?

    @Option(help: ArgumentHelp("Seconds between scans for new and changed files.", valueName: "seconds"))
    var rescan: Int = 30

    @OptionGroup var peers: PeerOptions
    @OptionGroup var account: AccountOptions
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var config: ConfigOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var recording: RecordEngineOptions

    func validate() throws {
        try peers.validateURL()
        guard rescan >= 1 else { throw ValidationError("--rescan must be at least 1") }
    }

    func run() async throws {
        try await runReportingErrors {
            let harpConfig = try config.harpConfig()
            let settings = try peers.settings(config: harpConfig)
            guard settings.signalURL != nil else {
                throw UsageError(description: "seed needs a signaling server: --signal URL or HARP_SIGNAL")
            }
            let logger = config.logger
            let client = try config.client(account)
            let identity = try config.deviceIdentity()
            let store = try storeOptions.open(config: harpConfig)
            let local = URL(fileURLWithPath: directory).standardizedFileURL.path
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: local, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw UsageError(description: "\(directory) is not a folder")
            }
            let remoteRoot = remote ?? "/" + URL(fileURLWithPath: local).lastPathComponent
            let folder = try await client.item(at: remoteRoot)
            guard folder.isFolder else { throw UsageError(description: "\(remoteRoot) is not a folder on the server") }

            let recorder = try recording.recorder()
            defer { recorder?.flush() }
            let node = SwarmNode(identity: identity, settings: settings, logger: logger, recorder: recorder)
            await node.start()
            let (json, quiet) = (output.json, output.quiet)
            let versionLog = VersionLogHook(
                signalURL: settings.signalURL, client: client, identity: identity, logger: logger, json: json,
                quiet: quiet)
            let seeder = FolderSeeder(
                client: client, store: store, node: node, identity: identity, localRoot: local,
                remoteRoot: folder.path, baseOptions: try peers.swarmOptions(config: harpConfig), logger: logger
            ) { event in
                event.print(json: json, quiet: quiet)
                versionLog.note(event)
            }
            let status = StatusWriter(command: "seed", node: node, board: ProgressBoard())
            await status.start()
            let loop = Task {
                while !Task.isCancelled {
                    await seeder.scan()
                    await versionLog.recordSeeded(store: store, localRoot: local, remoteRoot: folder.path)
                    try? await Task.sleep(for: .seconds(rescan))
                }
            }
            await waitForInterrupt()
            loop.cancel()
            if !output.quiet { await reportUploads(node, json: output.json) }
            await status.stop()
            await node.shutdown()
        }
    }
}
