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

    /// Small files uploaded at once (each one PUT).
    static let parallelSmall = 8

    static func fileSize(_ path: String) -> Int64? {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value
    }

    /// Makes the server folders that `paths` are in, below the folders given with -R (`bases`): each base with its
    /// missing parents, then each folder below it once (parents first). Returns the folders made or found.
    static func makeFolders(
        for paths: [String], in bases: [String], _ sidecars: SidecarFolder
    ) async throws
        -> [String]
    {
        var needed = Set<String>()
        for path in paths {
            var folder = SidecarFolder.parent(of: path)
            while !needed.contains(folder), !bases.contains(folder), folder.count > 1 {
                needed.insert(folder)
                folder = SidecarFolder.parent(of: folder)
            }
        }
        for base in Set(bases) { try await sidecars.ensureFolders(base) }
        let ordered = needed.sorted { $0.count < $1.count || ($0.count == $1.count && $0 < $1) }
        for folder in ordered { try await sidecars.ensureFolder(folder) }
        return ordered
    }

    /// The files below the server folder `folder`, by path relative to it (`.harp/` left out).
    static func listFiles(_ folder: String, client: NextcloudClient) async throws -> [String: DAVItem] {
        var files: [String: DAVItem] = [:]
        let prefix = folder == "/" ? "/" : folder + "/"
        for try await item in client.walk(folder) where !item.isFolder && item.path.hasPrefix(prefix) {
            let relative = String(item.path.dropFirst(prefix.count))
            if relative.split(separator: "/").contains(where: { $0 == Sidecar.folderName }) { continue }
            files[relative] = item
        }
        return files
    }

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

            // Each file to upload, and for files found in a folder given with -R, that folder's index in `folders`.
            var jobs: [(local: String, remote: String, folder: Int?)] = []
            var folders: [(local: String, remote: String)] = []
            for argument in arguments.dropLast() {
                let local = URL(fileURLWithPath: argument).standardizedFileURL.path
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: local, isDirectory: &isDirectory) else {
                    throw UsageError(description: "\(argument): no such file")
                }
                let base = (folder.path == "/" ? "" : folder.path) + "/" + URL(fileURLWithPath: local).lastPathComponent
                if isDirectory.boolValue {
                    guard recursive else { throw UsageError(description: "\(argument) is a folder; use -R") }
                    folders.append((local, base))
                    let enumerator = FileManager.default.enumerator(atPath: local)
                    while let relative = enumerator?.nextObject() as? String {
                        var childIsDirectory: ObjCBool = false
                        let child = local + "/" + relative
                        if FileManager.default.fileExists(atPath: child, isDirectory: &childIsDirectory),
                            !childIsDirectory.boolValue, !relative.hasSuffix(".harp-part")
                        {
                            jobs.append((child, base + "/" + relative, folders.count - 1))
                        }
                    }
                } else {
                    jobs.append((local, base, nil))
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
            let json = output.json
            let quiet = output.quiet
            func done(
                local: String, remote: String, size: Int64, swarm: [UInt8]?, fileID: Int64?, logged: Any,
                elapsed: Duration
            ) {
                if json {
                    printJSONLine([
                        "event": "file-done", "path": remote, "local": local, "size": size,
                        "swarm": swarm?.hexString ?? NSNull(), "fileid": fileID ?? NSNull(), "versionLog": logged,
                        "seconds":
                            (Double(elapsed.components.attoseconds) * 1e-18
                            + Double(elapsed.components.seconds) * 1000).rounded() / 1000,
                    ])
                } else if !quiet {
                    print("\(local) -> \(remote): \(formatBytes(size)) uploaded")
                }
            }
            func failed(local: String, remote: String, _ error: any Error) {
                failures += 1
                if firstError == nil { firstError = error }
                if json {
                    printJSONLine([
                        "event": "error", "path": remote, "message": "\(error)",
                        "code": Int(HarpExitCode.code(for: error).rawValue),
                    ])
                } else {
                    printError("harp-cli: \(local): \(error)")
                }
            }

            // The small files of folders given with -R go up first, `Self.parallelSmall` at a time, one PUT each: the
            // folder's bundle carries them (one swarm for all), so none gets a sidecar or swarm of its own.
            let small = jobs.filter { job in
                guard job.folder != nil, let size = Self.fileSize(job.local) else { return false }
                return size > 0 && size <= FolderSidecar.maxFileSize
            }
            let smallPaths = Set(small.map(\.local))
            var smallUploads: [FileUploader.SmallOutcome] = []
            // Every folder of the trees given with -R is made once, parents first (the per-file path would look up
            // each file's folders one PROPFIND per level).
            let inTrees = jobs.filter { $0.folder != nil }
            let treesMade = !inTrees.isEmpty
            if treesMade {
                let sidecars = SidecarFolder(client: client, logger: logger)
                for created in try await Self.makeFolders(
                    for: inTrees.map(\.remote), in: folders.map(\.remote), sidecars)
                {
                    logger.debug("made a folder", metadata: ["path": "\(created)"])
                }
            }
            if !small.isEmpty {
                typealias Uploaded = (FileUploader.SmallOutcome, Duration, VersionRecorder.Result?)
                await withTaskGroup(of: (Int, Result<Uploaded, any Error>).self) { group in
                    var next = 0
                    func add() {
                        guard next < small.count else { return }
                        let index = next
                        let job = small[index]
                        next += 1
                        group.addTask {
                            do {
                                let started = ContinuousClock.now
                                let uploaded = try await uploader.uploadSmall(job.local, to: job.remote)
                                let elapsed = ContinuousClock.now - started
                                // Appended here, eight at a time: one after the other they took as long as the uploads.
                                let logged = await versionLog.uploadedSmall(uploaded)
                                return (index, .success((uploaded, elapsed, logged)))
                            } catch {
                                return (index, .failure(error))
                            }
                        }
                    }
                    for _ in 0..<Self.parallelSmall { add() }
                    while let (index, result) = await group.next() {
                        add()
                        let job = small[index]
                        switch result {
                        case .success(let (uploaded, elapsed, logged)):
                            smallUploads.append(uploaded)
                            done(
                                local: job.local, remote: job.remote, size: uploaded.size, swarm: nil,
                                fileID: uploaded.fileID, logged: versionLog.report(job.remote, logged), elapsed: elapsed
                            )
                        case .failure(let error):
                            failed(local: job.local, remote: job.remote, error)
                        }
                    }
                }
            }
            for job in jobs where !smallPaths.contains(job.local) {
                do {
                    let started = ContinuousClock.now
                    let uploaded = try await uploader.upload(
                        job.local, to: job.remote, folderExists: job.folder != nil && treesMade)
                    let logged = await versionLog.uploaded(job.remote, root: uploaded.root, size: uploaded.size)
                    done(
                        local: job.local, remote: job.remote, size: uploaded.size, swarm: uploaded.swarmID,
                        fileID: uploaded.fileID, logged: logged, elapsed: ContinuousClock.now - started)
                } catch {
                    failed(local: job.local, remote: job.remote, error)
                    if jobs.count == 1 { throw error }
                }
            }
            // Each folder, listed once: the small files the server has as uploaded are recorded as its versions (so
            // `seed` can stand for them without comparing them), and with a signaling server its bundle is published
            // for them, with the other writers' files the bundle already published still lists.
            let announce = await node.hasSignaling
            if !smallUploads.isEmpty {
                let bundles = FolderBundlePublisher(client: client, store: store, identity: identity, logger: logger)
                for (_, remote) in folders {
                    do {
                        let listing = try await Self.listFiles(remote, client: client)
                        let held = uploader.bundleEntries(smallUploads, in: remote, listing: listing)
                        guard announce,
                            let published = try await bundles.publish(folder: remote, held: held, listing: listing)
                        else { continue }
                        var swarmID: [UInt8]?
                        if seed {
                            _ = try await bundles.serve(published, node: node, baseOptions: baseOptions)
                            swarmID = published.sidecar.swarmKeys.swarmID
                        }
                        if json {
                            printJSONLine([
                                "event": "bundle", "path": remote, "files": published.sidecar.files.count,
                                "held": held.count, "written": published.written,
                                "swarm": swarmID?.hexString ?? NSNull(),
                            ])
                        } else if !quiet {
                            print("\(remote): \(published.sidecar.files.count) small file(s) bundled in one swarm")
                        }
                    } catch {
                        // The files are uploaded: without a bundle they travel file by file from the server.
                        if json {
                            printJSONLine([
                                "event": "note", "path": remote,
                                "message": "the folder's bundle of small files was not published: \(error)",
                            ])
                        } else if !quiet {
                            printError("harp-cli: \(remote): the folder's bundle was not published: \(error)")
                        }
                    }
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
