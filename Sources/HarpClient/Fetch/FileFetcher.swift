public import ChunkStore
internal import Foundation
public import Logging
public import NextcloudClient
public import SwarmKit

/// The flow of `get` for one file (docs/engine.md): `FetchPlan` decides, this carries its steps out: read the
/// sidecar, fetch through the swarm (peers and the server as web seed) or from the server alone, compare with the
/// server's bytes, rename into place, publish a sidecar when there was none, and optionally keep seeding. Finished
/// files and files still uploading take this one path.
public struct FileFetcher: Sendable {
    /// What the command line asked for.
    public struct Options: Sendable {
        /// The server may send bytes (no `--no-server`).
        public var useServer = true
        /// `--verify-server`: compare every byte that came from peers with the server's before the rename.
        public var verifyServer = false
        /// `--seed`: keep seeding the files after they are fetched.
        public var seedAfter = false
        /// Without `seedAfter`: how long a finished swarm keeps serving peers still fetching it.
        public var linger: Duration = .seconds(30)
        /// What every swarm starts from.
        public var swarm = Swarm.Options()

        public init() {}
    }

    let client: NextcloudClient
    let store: ChunkStore
    let node: SwarmNode
    let options: Options
    let publisher: SidecarPublisher
    let sidecars: SidecarFolder
    let logger: Logger
    let progress: ProgressBoard

    public init(
        client: NextcloudClient, store: ChunkStore, node: SwarmNode, identity: DeviceIdentity, options: Options,
        logger: Logger, progress: ProgressBoard = ProgressBoard()
    ) {
        self.client = client
        self.store = store
        self.node = node
        self.options = options
        self.publisher = SidecarPublisher(client: client, identity: identity, logger: logger)
        self.sidecars = SidecarFolder(client: client, logger: logger)
        self.logger = logger
        self.progress = progress
    }

    /// What one fetch knows as it goes.
    struct Run {
        let path: String
        let destination: String
        /// The server's version (nil for an upload in progress).
        let remote: RemoteVersion?
        let checksums: [String]
        var sidecar: Sidecar?
        var sink: DownloadSink?
        var swarm: Swarm?
        var report: FetchReport
        var notes: [String] = []
    }

    /// Fetches `job`; returns what happened. The file is in place (verified) when this returns.
    public func fetch(_ job: FetchJob) async throws -> FetchReport {
        let destination = URL(fileURLWithPath: job.destination).standardizedFileURL.path
        let started = ContinuousClock.now
        var facts = FetchPlan.Facts(
            hasSignaling: await node.hasSignaling, useServer: options.useServer, verifyServer: options.verifyServer,
            seedAfter: options.seedAfter)
        var run: Run
        switch job.source {
        case .finished(let item):
            guard let remote = item.remoteVersion else {
                throw NextcloudError(
                    .malformedResponse, path: item.path, detail: "no fileid, etag or size in PROPFIND")
            }
            facts.hasOwnAccessRules = item.hasACLList
            facts.tooSmallForASwarm = ServerComparison.comparesWhole(size: remote.size)
            run = Run(
                path: item.path, destination: destination, remote: remote, checksums: item.checksums,
                report: FetchReport(remotePath: item.path, destination: destination, size: remote.size, method: "swarm")
            )
            run.report.etag = remote.etag
        case .uploading(let path, let sidecar):
            facts.uploading = true
            run = Run(
                path: path, destination: destination, remote: nil, checksums: [], sidecar: sidecar,
                report: FetchReport(remotePath: path, destination: destination, size: sidecar.size, method: "swarm"))
        }
        try job.folder?.createFolders(for: destination)
        try FileManager.default.createDirectory(
            atPath: (destination as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        progress.begin(run.path, size: run.report.size)
        defer { progress.end(run.path) }

        var plan = FetchPlan(facts)
        var step = plan.start()
        while true {
            switch step {
            case .readSidecar:
                step = plan.next(after: .sidecarRead(await readSidecar(&run)))
            case .fetchFromSwarm(let useServer):
                do {
                    try await fetchThroughSwarm(&run, useServer: useServer)
                    step = plan.next(after: .swarmFinished)
                } catch SwarmError.noManifest {
                    if let keys = run.sidecar?.swarmKeys { await node.close(keys) }
                    step = plan.next(after: .noManifestFromPeers)
                } catch FetchError.differsFromServer(let offset) {
                    step = plan.next(after: .compared(mismatchAt: offset))
                }
            case .compareWithServer(let depth):
                step = plan.next(after: .compared(mismatchAt: try await compare(&run, depth: depth)))
            case .finishFromSwarm(let republish):
                try await finishFromSwarm(&run, republish: republish)
                return finished(run, plan: plan, started: started)
            case .fetchFromServer:
                let sameRoot = try await fetchFromServer(&run)
                step = plan.next(after: .serverFinished(sameRootAsSidecar: sameRoot))
            case .publishSidecar:
                step = plan.next(after: .publishEnded(await publish(&run)))
            case .finishFromServer(let seed):
                run.report.swarmID = run.sidecar?.swarmKeys.swarmID
                if seed, let sidecar = run.sidecar, let root = run.report.root {
                    try await seedAfterServer(run, sidecar: sidecar, root: root)
                }
                return finished(run, plan: plan, started: started)
            case .notFound(let detail):
                throw NextcloudError(.notFoundOrNoAccess, path: run.path, detail: detail)
            case .fail(let error):
                throw error
            }
        }
    }

    private func finished(_ run: Run, plan: FetchPlan, started: ContinuousClock.Instant) -> FetchReport {
        var report = run.report
        report.notes = plan.notes + run.notes
        if run.remote != nil { report.notes += ClaimedChecksums(run.checksums).notes(forFileAt: run.destination) }
        report.seconds = (ContinuousClock.now - started).secondsValue
        return report
    }

    private func readSidecar(_ run: inout Run) async -> FetchPlan.SidecarFinding {
        guard let remote = run.remote else { return .none(note: nil) }
        let (found, note) = await sidecars.read(forFileAt: run.path, fileID: remote.fileid)
        guard let found else { return .none(note: note) }
        let validity = found.validity(for: remote)
        if validity != .stale { run.sidecar = found }
        return .found(validity)
    }

    /// Records that the file now at `destination` is the server's version `remote`. A failure (the file changed
    /// already) costs only that: `seed` will compare the file with the server before it vouches for it.
    func recordProvenance(_ run: inout Run, root: Hash256) {
        guard let remote = run.remote else { return }
        do {
            try store.recordProvenance(path: run.destination, root: root, server: remote, source: .download)
        } catch {
            run.notes.append("not recorded as the server's version (\(error))")
        }
    }
}
