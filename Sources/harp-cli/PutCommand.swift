import ArgumentParser
import ChunkStore
import Foundation
import Logging
import NextcloudClient
import SwarmKit

/// `harp-cli put`: upload to Nextcloud while peers can already fetch from the uploader.
struct PutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "put",
        abstract: "Upload files to a Nextcloud folder; peers can fetch them from you before the upload ends.",
        discussion: """
            Each file is indexed, a pending sidecar is published in the folder's .harp/ (with a signaling server), this \
            device starts seeding it, and the bytes go up with Nextcloud's chunked upload v2 (resumable: running put \
            again continues an interrupted upload). When the upload ends, the sidecar is rewritten with the file's \
            fileid and etag.

            Examples:
              harp-cli put raw.mov /Footage
              harp-cli put -R ./build /Artifacts/1234 --signal wss://signal.example.com/v1/ws --seed
            """)

    @Argument(help: ArgumentHelp("Local files (or folders, with -R), then the remote folder.", valueName: "paths"))
    var arguments: [String]

    @Flag(name: [.customShort("R"), .long], help: "Upload folders recursively.")
    var recursive = false

    @Flag(help: "Keep seeding after the uploads end, until interrupted.")
    var seed = false

    @OptionGroup var peers: PeerOptions
    @OptionGroup var account: AccountOptions
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var config: ConfigOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        try peers.validateURL()
        guard arguments.count >= 2 else { throw ValidationError("give at least one local path and the remote folder") }
    }

    func run() async throws {
        try await runReportingErrors {
            let harpConfig = try config.harpConfig()
            let logger = config.logger
            let client = try config.client(account)
            let identity = try config.deviceIdentity()
            let store = try storeOptions.open(config: harpConfig)
            let settings = try peers.settings(config: harpConfig)
            let baseOptions = try peers.swarmOptions(config: harpConfig)
            let remoteFolder = arguments.last!.hasSuffix("/") ? String(arguments.last!.dropLast()) : arguments.last!
            let remotePath = remoteFolder.isEmpty ? "/" : remoteFolder
            let folder: DAVItem
            do {
                folder = try await client.item(at: remotePath)
            } catch let error as NextcloudError where error.kind == .notFoundOrNoAccess {
                // A folder that does not exist yet is created (with its parents), as `mkdir -p` would.
                try await SidecarFolder(client: client, logger: logger).ensureFolders(remotePath)
                folder = try await client.item(at: remotePath)
            }
            guard folder.isFolder else {
                throw UsageError(description: "\(remoteFolder) is not a folder on the server")
            }
            guard folder.permissions?.contains(.createFile) ?? true else {
                throw NextcloudError(.forbidden, path: folder.path, detail: "you may not create files in this folder")
            }

            var jobs: [(local: String, remote: String)] = []
            for argument in arguments.dropLast() {
                let local = URL(fileURLWithPath: argument).standardizedFileURL.path
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: local, isDirectory: &isDirectory) else {
                    throw UsageError(description: "\(argument): no such file")
                }
                let base = (folder.path == "/" ? "" : folder.path) + "/" + URL(fileURLWithPath: local).lastPathComponent
                if isDirectory.boolValue {
                    guard recursive else { throw UsageError(description: "\(argument) is a folder; use -R") }
                    let enumerator = FileManager.default.enumerator(atPath: local)
                    while let relative = enumerator?.nextObject() as? String {
                        var childIsDirectory: ObjCBool = false
                        let child = local + "/" + relative
                        if FileManager.default.fileExists(atPath: child, isDirectory: &childIsDirectory),
                            !childIsDirectory.boolValue, !relative.hasSuffix(".harp-part")
                        {
                            jobs.append((child, base + "/" + relative))
                        }
                    }
                } else {
                    jobs.append((local, base))
                }
            }

            let node = SwarmNode(identity: identity, settings: settings, logger: logger)
            await node.start()
            if settings.signalURL == nil, !output.json {
                printError("harp-cli: no signaling server (--signal or HARP_SIGNAL): uploading without seeding")
            }
            let status = StatusWriter(command: "put", node: node, board: ProgressBoard())
            await status.start()
            var failures = 0
            var firstError: (any Error)?
            for job in jobs {
                do {
                    let started = ContinuousClock.now
                    let uploaded = try await upload(
                        job.local, to: job.remote, client: client, store: store, node: node, identity: identity,
                        baseOptions: baseOptions, logger: logger)
                    let elapsed = ContinuousClock.now - started
                    if output.json {
                        printJSONLine([
                            "event": "file-done", "path": job.remote, "local": job.local, "size": uploaded.size,
                            "swarm": uploaded.swarmID?.hexString ?? NSNull(),
                            "fileid": uploaded.fileID ?? NSNull(),
                            "seconds":
                                (Double(elapsed.components.attoseconds) * 1e-18 + Double(elapsed.components.seconds)
                                * 1000)
                                .rounded() / 1000,
                        ])
                    } else if !output.quiet {
                        print("\(job.local) -> \(job.remote): \(formatBytes(uploaded.size)) uploaded")
                    }
                } catch {
                    failures += 1
                    if firstError == nil { firstError = error }
                    if output.json {
                        printJSONLine([
                            "event": "error", "path": job.remote, "message": "\(error)",
                            "code": Int(HarpExitCode.code(for: error).rawValue),
                        ])
                    } else {
                        printError("harp-cli: \(job.local): \(error)")
                    }
                    if jobs.count == 1 { throw error }
                }
            }
            if seed, failures == 0, settings.signalURL != nil {
                if !output.json, !output.quiet { print("seeding \(jobs.count) file(s); Ctrl-C to stop") }
                await waitForInterrupt()
            }
            if !output.quiet { await reportUploads(node, json: output.json) }
            await status.stop()
            await node.shutdown()
            if failures > 0, let firstError {
                let code = failures == jobs.count ? HarpExitCode.code(for: firstError) : .partialTransfer
                throw ExitCode(code.rawValue)
            }
        }
    }

    private func upload(
        _ local: String, to remote: String, client: NextcloudClient, store: ChunkStore, node: SwarmNode,
        identity: DeviceIdentity, baseOptions: Swarm.Options, logger: Logger
    ) async throws -> (size: Int64, root: Hash256, fileID: Int64?, swarmID: [UInt8]?) {
        let outcome = try store.index(file: local)
        guard let manifest = try store.manifest(root: outcome.root) else {
            throw FetchError.local("the index lost the manifest of \(local)")
        }
        let sidecars = SidecarFolder(client: client, logger: logger)
        try await sidecars.ensureFolders(SidecarFolder.parent(of: remote))
        let name = SidecarFolder.name(of: remote)
        let attributes = try FileManager.default.attributesOfItem(atPath: local)
        let modified = attributes[.modificationDate] as? Date ?? Date()
        let announce = await node.hasSignaling
        // One σ for the version: the pending sidecar's, kept by the final one, so the swarm stays the same.
        let salt = Sidecar.randomSalt()
        let keys = SwarmKeys(contentRoot: outcome.root.bytes, salt: salt)
        if announce {
            // The pending sidecar goes first, so teammates can fetch from this device while the upload runs.
            let pending = Sidecar(
                fileid: nil, etag: nil, name: name, size: outcome.size, mtime: Int64(modified.timeIntervalSince1970),
                chunking: outcome.parameters, root: outcome.root, salt: salt, pending: true,
                writerKey: identity.publicKey, sign: identity.sign)
            try await sidecars.publishManifest(manifest, for: pending, nextTo: remote)
            try await sidecars.publish(pending, nextTo: remote)
            var options = baseOptions
            options.superSeed = true
            let swarm = try await node.open(
                root: outcome.root, keys: keys, chunking: outcome.parameters, expectedSize: outcome.size,
                options: options)
            try await swarm.seed(manifest: manifest, store: store)
        }
        let result = try await client.uploadFile(at: local, to: remote, modified: modified)
        let item = try await client.item(at: remote)
        if let version = item.remoteVersion, version.size == outcome.size {
            // The server's version is these bytes, if the file did not change while it was read: the guard of the
            // index entry is checked against the file now (DESIGN §4, "Provenance").
            do {
                try store.recordProvenance(
                    path: local, root: outcome.root, server: version, source: .upload)
            } catch {
                logger.warning(
                    "the file changed during its upload: not recorded as the server's bytes",
                    metadata: ["file.path": "\(local)", "error": "\(error)"])
            }
        }
        if announce, let version = item.remoteVersion {
            let final = Sidecar(
                fileid: version.fileid, etag: version.etag, name: name, size: version.size, mtime: version.mtime,
                chunking: outcome.parameters, root: outcome.root, salt: salt, pending: false,
                writerKey: identity.publicKey, sign: identity.sign)
            try await sidecars.publishManifest(manifest, for: final, nextTo: remote)
            try await sidecars.publish(final, nextTo: remote)
            await sidecars.removePending(nextTo: remote)
        }
        if announce, !seed { await node.close(keys) }
        return (outcome.size, outcome.root, result.fileID ?? item.fileID, announce ? keys.swarmID : nil)
    }
}
