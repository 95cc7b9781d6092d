import ArgumentParser
import ChunkStore
import Foundation
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
            server names the same content root, or, when there is no sidecar yet, when randomly chosen chunks match \
            the server's bytes: then harp publishes the sidecar (if you may write the folder) and super-seeds. New and \
            changed files are noticed at each rescan. All files share one signaling connection.

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

            let node = SwarmNode(identity: identity, settings: settings, logger: logger)
            await node.start()
            let seeder = FolderSeeder(
                client: client, store: store, node: node, identity: identity, localRoot: local,
                remoteRoot: folder.path, baseOptions: try peers.swarmOptions(config: harpConfig), json: output.json,
                quiet: output.quiet, logger: logger)
            let status = StatusWriter(command: "seed", node: node, board: ProgressBoard())
            await status.start()
            let loop = Task {
                while !Task.isCancelled {
                    await seeder.scan()
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

/// The files of one folder being seeded, kept in step with the disk and the server at each scan.
actor FolderSeeder {
    struct Seeded {
        var root: Hash256
        var size: Int64
        var mtime: Date
    }

    let client: NextcloudClient
    let store: ChunkStore
    let node: SwarmNode
    let identity: DeviceIdentity
    let localRoot: String
    let remoteRoot: String
    let baseOptions: Swarm.Options
    let json: Bool
    let quiet: Bool
    let logger: Logger
    private var seeded: [String: Seeded] = [:]
    /// Files found not to match the server, by their local size and mtime (not retried until they change).
    private var mismatched: [String: Date] = [:]

    init(
        client: NextcloudClient, store: ChunkStore, node: SwarmNode, identity: DeviceIdentity, localRoot: String,
        remoteRoot: String, baseOptions: Swarm.Options, json: Bool, quiet: Bool, logger: Logger
    ) {
        self.client = client
        self.store = store
        self.node = node
        self.identity = identity
        self.localRoot = localRoot
        self.remoteRoot = remoteRoot
        self.baseOptions = baseOptions
        self.json = json
        self.quiet = quiet
        self.logger = logger
    }

    /// One pass: walk the server folder, match local files, start seeding new and changed ones, stop removed ones.
    func scan() async {
        var remoteItems: [String: DAVItem] = [:]
        do {
            for try await item in client.walk(remoteRoot) where !item.isFolder {
                let relative = String(item.path.dropFirst(remoteRoot.count)).trimmingPrefix("/")
                if relative.split(separator: "/").contains(where: { $0 == Sidecar.folderName }) { continue }
                remoteItems[String(relative)] = item
            }
        } catch {
            report(
                ["event": "error", "message": "cannot list \(remoteRoot): \(error)"],
                text: "harp-cli: cannot list \(remoteRoot): \(error)")
            return
        }
        var present = Set<String>()
        for (relative, item) in remoteItems.sorted(by: { $0.key < $1.key }) {
            let path = localRoot + "/" + relative
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                let size = (attributes[.size] as? NSNumber)?.int64Value, size == item.size,
                let mtime = attributes[.modificationDate] as? Date
            else { continue }
            present.insert(relative)
            if let current = seeded[relative], current.size == size, current.mtime == mtime { continue }
            if mismatched[relative] == mtime { continue }
            await seedFile(relative: relative, path: path, item: item, mtime: mtime)
        }
        for (relative, entry) in seeded where !present.contains(relative) {
            await node.close(root: entry.root)
            seeded[relative] = nil
            report(["event": "unseeded", "path": relative], text: "stopped seeding \(relative)")
        }
    }

    private func seedFile(relative: String, path: String, item: DAVItem, mtime: Date) async {
        guard let remote = item.remoteVersion else { return }
        guard !item.hasACLList else {
            report(
                ["event": "skipped", "path": relative, "reason": "the file has its own access rules"],
                text: "not seeding \(relative): it has its own access rules (server only)")
            return
        }
        do {
            let outcome = try store.index(file: path)
            guard let manifest = try store.manifest(root: outcome.root) else { return }
            let sidecars = SidecarFolder(client: client, logger: logger)
            let (sidecar, _) = await sidecars.read(forFileAt: item.path, fileID: remote.fileid)
            if let sidecar, sidecar.validity(for: remote) == .valid, sidecar.root == outcome.root {
                // The server's file is described by a sidecar naming our bytes.
            } else {
                // No sidecar, or one for other bytes: check our bytes against the server's before claiming them.
                let webSeed = NextcloudWebSeed(client: client, path: item.path, etag: remote.etag)
                for _ in 0..<min(3, manifest.chunks.count) {
                    let index = Int.random(in: 0..<manifest.chunks.count)
                    let range = manifest.range(of: index)
                    let bytes = try await webSeed.fetch(
                        offset: range.lowerBound, length: Int(range.upperBound - range.lowerBound))
                    guard Hash256.sha256(bytes) == manifest.chunks[index].hash else {
                        mismatched[relative] = mtime
                        report(
                            ["event": "skipped", "path": relative, "reason": "differs from the server's file"],
                            text: "not seeding \(relative): it differs from the server's file")
                        return
                    }
                }
                if await sidecars.mayPublish(nextTo: item.path) {
                    let published = Sidecar(
                        fileid: remote.fileid, etag: remote.etag, name: SidecarFolder.name(of: item.path),
                        size: remote.size, mtime: remote.mtime, chunking: outcome.parameters, root: outcome.root,
                        pending: false, writerKey: identity.publicKey, sign: identity.sign)
                    try await sidecars.publishManifest(manifest, for: published, nextTo: item.path)
                    try await sidecars.publish(published, nextTo: item.path)
                } else if sidecar == nil {
                    report(
                        [
                            "event": "skipped", "path": relative,
                            "reason": "no sidecar and no write access to publish one",
                        ],
                        text: "not seeding \(relative): no sidecar, and no write access to publish one")
                    return
                }
            }
            if let old = seeded[relative], old.root != outcome.root { await node.close(root: old.root) }
            // This device has the file from outside the swarm: it is an origin and super-seeds what the swarm lacks.
            var options = baseOptions
            options.superSeed = true
            let swarm = try await node.open(
                root: outcome.root, chunking: outcome.parameters, expectedSize: outcome.size, options: options)
            try await swarm.seed(manifest: manifest, store: store)
            seeded[relative] = Seeded(root: outcome.root, size: outcome.size, mtime: mtime)
            report(
                [
                    "event": "seeding", "path": relative,
                    "swarm": SwarmKeys(contentRoot: outcome.root.bytes).swarmID.hexString, "size": outcome.size,
                ],
                text: "seeding \(relative) (\(formatBytes(outcome.size)))")
        } catch {
            report(
                ["event": "error", "path": relative, "message": "\(error)"], text: "harp-cli: \(relative): \(error)")
        }
    }

    private func report(_ object: [String: Any], text: String) {
        if json {
            printJSONLine(object)
        } else if object["event"] as? String == "error" {
            printError(text)
        } else if !quiet {
            print(text)
        }
    }
}
