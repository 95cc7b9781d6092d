import ArgumentParser
import ChunkStore
import Foundation
import HarpClient
import Logging
import NextcloudClient
import SwarmKit

/// `harp-cli get`: fetch files from every peer that has them and from the server only what peers cannot give.
struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Download Nextcloud files through the swarm (peers first, the server as a last resort).",
        discussion: """
            Each file is checked with the server first (a user without read access gets nothing). With a signaling \
            server and a sidecar published next to the file, its chunks come from every peer that has them, each one \
            verified before it is written; the server sends only what no peer can give. Without either, the file comes \
            from the server (parallel Range requests) and a sidecar is published when you may write the folder, so \
            the next fetcher gets a swarm. An interrupted get (Ctrl-C, kill -9) resumes where it stopped.

            Exit status: 0 only if every file completed and verified; see docs/cli.md for the others.

            Examples:
              harp-cli get /Footage/raw.mov
              harp-cli get -R /Footage -o ./footage --signal wss://signal.example.com/v1/ws
              HARP_SIGNAL=ws://127.0.0.1:7000/v1/ws harp-cli get /Builds/app.tar --seed
            """)

    @Argument(help: "Remote paths of files (or folders, with -R).")
    var paths: [String]

    @Option(
        name: .shortAndLong,
        help: ArgumentHelp("Local destination: a file name for one file, else a folder.", valueName: "dest"))
    var output: String?

    @Flag(name: [.customShort("R"), .long], help: "Fetch folders recursively.")
    var recursive = false

    @Flag(help: "Keep seeding the files after they are fetched, until interrupted.")
    var seed = false

    @Flag(name: .customLong("no-server"), help: "Never download from the server (peers only).")
    var noServer = false

    @Flag(
        name: .customLong("verify-server"),
        help: ArgumentHelp(
            "Compare every byte that came from peers with the server's before the rename (costs the server one copy;"
                + " by default 64 random 4 KiB ranges are compared)."))
    var verifyServer = false

    @Option(
        help: ArgumentHelp(
            "After the files are in place, keep serving peers still fetching them for up to this many seconds"
                + " (0: exit at once).", valueName: "seconds"))
    var linger: Double = 30

    @Option(
        help: ArgumentHelp(
            "Files fetched at once (default: limits.parallel_files of config.toml, else \(FetchQueue.defaultParallel),"
                + " what a server sustains as measured in docs/benchmarks.md).", valueName: "n"))
    var parallel: Int?

    /// `--parallel`, else config.toml's `limits.parallel_files`, else the measured default.
    func parallelFiles(_ config: HarpConfig) -> Int {
        parallel ?? config.parallelFiles ?? FetchQueue.defaultParallel
    }

    @OptionGroup var recording: RecordEngineOptions

    @OptionGroup var peers: PeerOptions
    @OptionGroup var account: AccountOptions
    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var config: ConfigOptions
    @OptionGroup var outputOptions: OutputOptions

    func validate() throws {
        try peers.validateURL()
        guard !(verifyServer && noServer) else {
            throw ValidationError("--verify-server needs the server: drop --no-server")
        }
        guard (parallel ?? 1) >= 1 else { throw ValidationError("--parallel must be at least 1") }
        guard linger >= 0, linger.isFinite else { throw ValidationError("--linger must be 0 or more seconds") }
    }

    func run() async throws {
        try await runReportingErrors {
            let harpConfig = try config.harpConfig()
            let logger = config.logger
            // At least one transfer thread (each with its kept-alive connection) per file in flight: with fewer, files
            // would wait for a thread, whatever --parallel says.
            let client = try config.client(
                account,
                concurrentTransfers: max(TransportOptions.defaultConcurrentTransfers, parallelFiles(harpConfig)))
            let identity = try config.deviceIdentity()
            let store = try storeOptions.open(config: harpConfig)
            let settings = try peers.settings(config: harpConfig)
            let json = outputOptions.json
            if settings.signalURL == nil, !json, !outputOptions.quiet {
                printError("harp-cli: no signaling server (--signal or HARP_SIGNAL): fetching from the server alone")
            }
            let recorder = try recording.recorder()
            defer { recorder?.flush() }
            let node = SwarmNode(identity: identity, settings: settings, logger: logger, recorder: recorder)
            let board = ProgressBoard()
            var fetchOptions = FileFetcher.Options()
            fetchOptions.useServer = !noServer
            fetchOptions.verifyServer = verifyServer
            fetchOptions.seedAfter = seed
            fetchOptions.linger = .milliseconds(Int64(linger * 1000))
            fetchOptions.swarm = try peers.swarmOptions(config: harpConfig)
            let fetcher = FileFetcher(
                client: client, store: store, node: node, identity: identity, options: fetchOptions, logger: logger,
                progress: board)

            // Resolve every argument first: access problems end here, before anything is joined. A file still
            // uploading (found by its pending sidecar) is a job like any other.
            let resolved = try await FetchJobs.resolve(
                paths, output: output, recursive: recursive, findUploads: settings.signalURL != nil, client: client,
                logger: logger)
            let jobs = resolved.jobs
            let refused = resolved.refused
            // Only now, with access to every file confirmed, meet the signaling server.
            await node.start()
            if json {
                printJSONLine([
                    "event": "start", "files": jobs.count,
                    "bytes": jobs.reduce(Int64(0)) { total, job in
                        if case .finished(let item) = job.source { return total + (item.size ?? 0) }
                        return total
                    },
                ])
            }

            for (path, error) in refused {
                if json {
                    printJSONLine([
                        "event": "error", "path": path, "message": "\(error)",
                        "code": Int(HarpExitCode.code(for: error).rawValue),
                    ])
                } else {
                    printError("harp-cli: \(error)")
                }
            }

            let live = LiveProgress(
                board: board, json: json, quiet: outputOptions.quiet, links: { [node] in node.peerLinks })
            live.setTotal(files: jobs.count)
            let status = StatusWriter(command: "get", node: node, board: board)
            await status.start()
            let printer = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: live.interval)
                    live.tick()
                }
            }
            let started = ContinuousClock.now
            var reports: [FetchReport] = []
            var failures: [(String, any Error)] = refused.map { ($0.path, $0.error) }
            func finished(_ path: String, _ result: Result<FetchReport, any Error>) {
                switch result {
                case .success(let report):
                    reports.append(report)
                    live.fileDone(
                        bytes: report.size, fromPeers: report.bytesFromPeers, fromServer: report.bytesFromServer
                    )
                    if json {
                        printJSONLine(report.json)
                    } else {
                        let peersPart =
                            report.method == "swarm"
                            ? ", \(formatBytes(report.bytesFromPeers)) from \(report.peersUsed) peers" : ""
                        live.say(
                            "\(report.remotePath) -> \(report.destination): \(formatBytes(report.size)) in "
                                + String(format: "%.1f s", report.seconds)
                                + "\(peersPart), \(formatBytes(report.bytesFromServer)) from the server")
                        for note in report.notes { live.say("  note: \(note)") }
                    }
                case .failure(let error):
                    failures.append((path, error))
                    if json {
                        printJSONLine([
                            "event": "error", "path": path, "message": "\(error)",
                            "code": Int(HarpExitCode.code(for: error).rawValue),
                        ])
                    } else {
                        printError("harp-cli: \(path): \(error)")
                    }
                }
            }
            // A walked folder's small files come through its bundle, one swarm for all of them, when it has one that
            // describes the folder as listed; everything else file by file.
            var remaining = jobs
            var bundled: [String] = []
            let bundles = FolderBundleFetcher(
                client: client, store: store, node: node, options: fetchOptions, logger: logger, progress: board)
            for folder in resolved.folders {
                let outcome = await bundles.fetch(folder: folder, jobs: remaining)
                remaining = outcome.remaining
                for note in outcome.notes {
                    if json {
                        printJSONLine(["event": "note", "path": folder, "message": note])
                    } else if !outputOptions.quiet {
                        live.say("\(folder): note: \(note)")
                    }
                }
                for report in outcome.reports {
                    bundled.append(report.remotePath)
                    finished(report.remotePath, .success(report))
                }
            }
            let queue = FetchQueue(fetcher: fetcher, parallel: parallelFiles(harpConfig))
            await queue.run(remaining, finished: finished)
            // The folders' bundles, where the small files came one by one (none was published, or it was out of
            // date): the next get -R takes them through one swarm. Served here with --seed.
            if await node.hasSignaling {
                let publisher = FolderBundlePublisher(client: client, store: store, identity: identity, logger: logger)
                let byBundle = Set(bundled)
                for folder in resolved.folders {
                    let prefix = folder == "/" ? "/" : (folder.hasSuffix("/") ? folder : folder + "/")
                    let single = reports.filter {
                        $0.remotePath.hasPrefix(prefix) && !byBundle.contains($0.remotePath)
                            && $0.size <= FolderSidecar.maxFileSize
                    }
                    guard !single.isEmpty else { continue }
                    do {
                        let base = String(prefix.dropLast()).isEmpty ? "/" : String(prefix.dropLast())
                        guard let published = try await publisher.publish(folder: base, fetched: reports, jobs: jobs),
                            published.written || seed
                        else { continue }
                        if seed, failures.isEmpty {
                            _ = try await publisher.serve(published, node: node, baseOptions: fetchOptions.swarm)
                        }
                        if json {
                            printJSONLine([
                                "event": "bundle", "path": base, "files": published.sidecar.files.count,
                                "written": published.written,
                            ])
                        }
                    } catch {
                        logger.warning(
                            "the folder's bundle of small files was not published",
                            metadata: ["folder": "\(folder)", "error": "\(error)"])
                    }
                }
            }
            printer.cancel()
            live.finish()
            await VersionLogHook(
                signalURL: settings.signalURL, client: client, identity: identity, logger: logger, json: json,
                quiet: outputOptions.quiet
            ).fetched(reports, jobs: jobs)
            let elapsed = ContinuousClock.now - started
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            if json {
                printJSONLine([
                    "event": "summary", "files": jobs.count, "completed": reports.count,
                    "failed": failures.count,
                    "bytesFromPeers": reports.reduce(Int64(0)) { $0 + $1.bytesFromPeers },
                    "bytesFromServer": reports.reduce(Int64(0)) { $0 + $1.bytesFromServer },
                    "seconds": (seconds * 1000).rounded() / 1000,
                ])
            }
            if seed, settings.signalURL == nil {
                printError("harp-cli: --seed needs a signaling server (--signal or HARP_SIGNAL): not seeding")
            } else if seed, failures.isEmpty {
                if !json && !outputOptions.quiet { print("seeding \(reports.count) file(s); Ctrl-C to stop") }
                // Access is re-checked while seeding: a file that gained its own ACL rules, changed or went away on
                // the server stops being seeded (DESIGN §4).
                let watch = SeedAccessWatch(client: client, node: node, logger: logger) { path, reason in
                    if json {
                        printJSONLine(["event": "unseeded", "path": path, "reason": reason])
                    } else {
                        print("stopped seeding \(path): \(reason)")
                    }
                }
                let seeded = reports
                let watching = Task {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(30))
                        await watch.check(seeded)
                    }
                }
                await waitForInterrupt()
                watching.cancel()
            }
            if await node.isLingering {
                if !json && !outputOptions.quiet {
                    print(
                        "sharing with peers still fetching (up to \(formatDuration(linger)); --linger 0 exits at once)")
                }
                await node.waitForLingering()
            }
            if !outputOptions.quiet { await reportUploads(node, json: json) }
            await status.stop()
            await node.shutdown()
            if let (_, error) = failures.first {
                let code =
                    failures.count == jobs.count + refused.count
                    ? HarpExitCode.code(for: error) : .partialTransfer
                throw ExitCode(code.rawValue)
            }
        }
    }
}

/// Prints what this process sent to peers (at the end of a command that seeded).
func reportUploads(_ node: SwarmNode, json: Bool) async {
    let totals = await node.totals()
    guard totals.bytesUploaded > 0 || totals.swarms > 0 else { return }
    if json {
        printJSONLine(["event": "uploads", "bytesUploaded": totals.bytesUploaded])
    } else {
        print("sent \(formatBytes(totals.bytesUploaded)) to peers")
    }
}

/// Suspends until SIGINT or SIGTERM.
func waitForInterrupt() async {
    signal(SIGINT, SIG_IGN)
    signal(SIGTERM, SIG_IGN)
    let sources = [SIGINT, SIGTERM].map { DispatchSource.makeSignalSource(signal: $0, queue: .global()) }
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let once = OnceFlag()
        for source in sources {
            source.setEventHandler {
                if once.set() { continuation.resume() }
            }
            source.resume()
        }
    }
    for source in sources { source.cancel() }
}

/// True the first time `set` is called.
final class OnceFlag: @unchecked Sendable {
    // @unchecked: `done` is only read and written under `lock`.
    private let lock = NSLock()
    private var done = false
    func set() -> Bool {
        lock.withLock {
            defer { done = true }
            return !done
        }
    }
}
