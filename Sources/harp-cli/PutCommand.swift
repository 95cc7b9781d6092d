import ArgumentParser
import ChunkStore
import Foundation
import HarpClient
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
            let uploader = FileUploader(
                client: client, store: store, node: node, identity: identity, baseOptions: baseOptions,
                seedAfter: seed, logger: logger)
            let versionLog = VersionLogHook(
                signalURL: settings.signalURL, client: client, identity: identity, logger: logger, json: output.json,
                quiet: output.quiet)
            for job in jobs {
                do {
                    let started = ContinuousClock.now
                    let uploaded = try await uploader.upload(job.local, to: job.remote)
                    let elapsed = ContinuousClock.now - started
                    let logged = await versionLog.uploaded(job.remote, root: uploaded.root, size: uploaded.size)
                    if output.json {
                        printJSONLine([
                            "event": "file-done", "path": job.remote, "local": job.local, "size": uploaded.size,
                            "swarm": uploaded.swarmID?.hexString ?? NSNull(),
                            "fileid": uploaded.fileID ?? NSNull(), "versionLog": logged,
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
}
