public import ChunkStore
internal import Foundation
internal import HarpBasics
public import Logging
internal import NIOPosix
public import NextcloudClient
internal import SwarmKit

/// `get -R` of a folder whose small files are bundled (`FolderSidecar`): one sidecar read, one swarm joined, every
/// small file's chunks taken from peers at once (rarest first across the whole bundle), then samples of the whole bundle
/// compared with the server, and each file renamed into place. Without a bundle, or with one that does not describe
/// the folder as the walk found it, nothing happens here and every file takes the file-by-file path.
public struct FolderBundleFetcher: Sendable {
    let client: NextcloudClient
    let store: ChunkStore
    let node: SwarmNode
    let options: FileFetcher.Options
    let sidecars: SidecarFolder
    let logger: Logger
    let progress: ProgressBoard

    public init(
        client: NextcloudClient, store: ChunkStore, node: SwarmNode, options: FileFetcher.Options, logger: Logger,
        progress: ProgressBoard = ProgressBoard()
    ) {
        self.client = client
        self.store = store
        self.node = node
        self.options = options
        self.sidecars = SidecarFolder(client: client, logger: logger)
        self.logger = logger
        self.progress = progress
    }

    /// What the bundle did for a folder's jobs.
    public struct Outcome: Sendable {
        /// The files fetched through the bundle, in place and verified.
        public var reports: [FetchReport] = []
        /// The jobs still to fetch file by file.
        public var remaining: [FetchJob]
        /// Why the bundle was not used, or what it did, for the user.
        public var notes: [String] = []
    }

    /// One bundled file and the job that wants it.
    struct Member {
        var entry: FolderSidecar.Entry
        var job: FetchJob
        var item: DAVItem
        /// Where the file starts in the bundle.
        var start: Int64
    }

    /// Fetches the bundled small files of the server folder `folder` among `jobs`; returns their reports and the jobs
    /// left for the file-by-file path.
    public func fetch(folder path: String, jobs: [FetchJob]) async -> Outcome {
        var outcome = Outcome(remaining: jobs)
        let folder = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        guard await node.hasSignaling else { return outcome }
        let (found, note) = await sidecars.readFolderSidecar(of: folder)
        guard let sidecar = found else {
            if let note { outcome.notes.append(note) }
            return outcome
        }
        let prefix = (folder == "/" ? "" : folder) + "/"
        var byPath: [String: Int] = [:]
        for (index, job) in jobs.enumerated() where job.remotePath.hasPrefix(prefix) {
            byPath[String(job.remotePath.dropFirst(prefix.count))] = index
        }
        var members: [Member] = []
        var taken = Set<Int>()
        var start: Int64 = 0
        for entry in sidecar.files {
            guard let index = byPath[entry.path], case .finished(let item) = jobs[index].source, entry.describes(item)
            else {
                outcome.notes.append(
                    "the folder's bundle of small files is out of date (\(entry.path) changed): fetching file by file")
                return outcome
            }
            members.append(Member(entry: entry, job: jobs[index], item: item, start: start))
            taken.insert(index)
            start += entry.size
        }
        do {
            let reports = try await fetch(sidecar, members: members, folder: folder)
            outcome.reports = reports
            outcome.remaining = jobs.enumerated().filter { !taken.contains($0.offset) }.map(\.element)
        } catch {
            outcome.notes.append("the folder's bundle of small files was not used (\(error)): fetching file by file")
        }
        return outcome
    }

    private func fetch(_ sidecar: FolderSidecar, members: [Member], folder: String) async throws -> [FetchReport] {
        let started = ContinuousClock.now
        guard let output = members.first?.job.folder else { throw FetchError.local("no output folder") }
        try FileManager.default.createDirectory(atPath: output.path, withIntermediateDirectories: true)
        let keys = sidecar.swarmKeys
        let destination =
            URL(fileURLWithPath: output.path + "/.harp-bundle-" + Hex.encode(keys.swarmID.prefix(8)))
            .standardizedFileURL.path
        var swarmOptions = options.swarm
        swarmOptions.useServer = options.useServer
        swarmOptions.filesInVersion = sidecar.files.count
        // Each small file is about one chunk: as many more requests in flight as the chunks are smaller than the
        // chunking's average (the pipeline's own estimate from rate and round trip still decides below that cap).
        let averageFile = max(1, Int(sidecar.size / Int64(sidecar.files.count)))
        swarmOptions.maxPipelineDepth *= min(64, max(1, sidecar.chunking.avgSize / averageFile))
        let swarm = try await node.open(
            root: sidecar.root, keys: keys, chunking: sidecar.chunking, expectedSize: sidecar.size,
            options: swarmOptions)
        let box = SinkBox()
        let store = self.store
        let target = Swarm.FetchTarget(
            openSink: { manifest in
                // The writer's list and the bundle must agree before a byte is written.
                _ = try sidecar.layout(of: manifest)
                // Synced and recorded every 64 MiB rather than every 32 chunks: a bundle's chunks are small files, and
                // a crash costs at most one batch, fetched again.
                let sink = try store.openDownload(
                    manifest: manifest, root: sidecar.root, destination: destination,
                    durability: DownloadSink.Durability(maxPendingChunks: 4096, maxPendingBytes: 64 << 20))
                box.sink = sink
                return sink
            },
            webSeed: BundleWebSeed(client: client, members: members))
        let label = folder + " (bundle)"
        progress.begin(label, size: sidecar.size)
        defer { progress.end(label) }
        let reporter = Task { [progress] in
            while !Task.isCancelled {
                progress.update(label, snapshot: await swarm.snapshot)
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
        defer { reporter.cancel() }
        let manifest: Manifest
        var check: ServerComparison.Outcome?
        var opened = started
        var fetched = started
        do {
            var known = try store.manifest(root: sidecar.root)
            if known == nil { known = await sidecars.readFolderManifest(for: sidecar, of: folder) }
            opened = ContinuousClock.now
            manifest = try await swarm.fetch(target, knownManifest: known)
            fetched = ContinuousClock.now
            guard let sink = box.sink else { throw FetchError.local("the bundle's download was not opened") }
            try sink.flush()
            // Bytes that all came from the server (each range under If-Match on its file's etag) are the server's:
            // comparing samples of them with the server again would prove nothing.
            let sources = await swarm.snapshot
            if sources.bytesFromPeers > 0 || sources.bytesFromLocal > 0 {
                check = try await compare(members, bundleAt: sink.partPath)
            }
            if let offset = check?.mismatchAt {
                try? sink.discard()
                throw FetchError.differsFromServer(offset: offset)
            }
        } catch {
            switch error {
            case SwarmError.changedOnServer, SwarmError.serverMismatch: try? box.sink?.discard()
            default: break
            }
            await node.close(keys)
            throw error
        }
        let layout = try sidecar.layout(of: manifest)
        guard let sink = box.sink else { throw FetchError.local("the bundle's download was not opened") }
        let compared = ContinuousClock.now
        try await extract(members, layout: layout, from: sink)
        logger.info(
            "fetched a folder's bundle",
            metadata: [
                "files": "\(members.count)", "bytes": "\(sidecar.size)",
                "seconds.open": "\((opened - started).secondsValue)",
                "seconds.fetch": "\((fetched - opened).secondsValue)",
                "seconds.compare": "\((compared - fetched).secondsValue)",
                "seconds.place": "\((ContinuousClock.now - compared).secondsValue)",
            ])
        if await swarm.fetchFinished(store: store) { await node.superSeeding(keys) }
        try? sink.discard()
        let snapshot = await swarm.snapshot
        if !options.seedAfter { await node.finish(keys, linger: options.linger) }
        let seconds = (ContinuousClock.now - started).secondsValue
        let note =
            "fetched with the folder's bundle of \(members.count) small files (one swarm), "
            + (check.map { "compared with the server by \($0.requests) samples of the whole bundle" }
                ?? "every byte from the server")
        // The bundle's totals, shared out by size: the summary's sums stay the bundle's.
        var reports: [FetchReport] = []
        var peersLeft = snapshot.bytesFromPeers
        var serverLeft = snapshot.bytesFromServer
        var localLeft = snapshot.bytesFromLocal
        for (index, member) in members.enumerated() {
            var report = FetchReport(
                remotePath: member.item.path, destination: member.job.destination, size: member.entry.size,
                method: "swarm")
            report.root = member.entry.root
            report.swarmID = keys.swarmID
            report.etag = member.entry.etag
            func share(_ total: Int64, _ left: inout Int64) -> Int64 {
                let part =
                    index == members.count - 1
                    ? left : min(left, Int64((Double(total) * Double(member.entry.size) / Double(sidecar.size))))
                left -= part
                return part
            }
            report.bytesFromPeers = share(snapshot.bytesFromPeers, &peersLeft)
            report.bytesFromServer = share(snapshot.bytesFromServer, &serverLeft)
            report.bytesFromLocal = share(snapshot.bytesFromLocal, &localLeft)
            report.peersUsed = snapshot.peersUsed
            report.seconds = seconds
            report.notes = [note]
            if index == 0 { report.check = check }
            reports.append(report)
        }
        return reports
    }

    /// `ServerComparison.sampleCount` ranges of `sampleLength` bytes at uniformly random offsets of the whole bundle,
    /// each compared with the server's bytes of the file it falls in (`If-Match` on the file's etag): a fraction f of
    /// the bundle's bytes that differ is missed with probability about (1 − f)^64, as for one large file.
    func compare(_ members: [Member], bundleAt path: String) async throws -> ServerComparison.Outcome {
        var generator = SystemRandomNumberGenerator()
        let total = members.last.map { $0.start + $0.entry.size } ?? 0
        let starts = members.map(\.start)
        var ranges: [Int: [(offset: Int64, length: Int64)]] = [:]
        for _ in 0..<ServerComparison.sampleCount where total > 0 {
            let position = Int64.random(in: 0..<total, using: &generator)
            let index = Self.member(at: position, starts: starts)
            let size = members[index].entry.size
            let length = min(Int64(ServerComparison.sampleLength), size)
            let offset = min(position - members[index].start, size - length)
            ranges[index, default: []].append((offset, length))
        }
        let client = self.client
        let started = ContinuousClock.now
        var result = ServerComparison.Outcome(mode: .samples)
        try await withThrowingTaskGroup(of: ServerComparison.Outcome.self) { group in
            var pending = ranges.sorted { $0.key < $1.key }.makeIterator()
            func addNext() {
                guard let (index, ranges) = pending.next() else { return }
                let member = members[index]
                group.addTask {
                    try await ServerComparison(
                        client: client, remotePath: member.item.path, etag: member.entry.etag, size: member.entry.size
                    ).check(localPath: path, localBase: member.start, ranges: ranges)
                }
            }
            for _ in 0..<8 { addNext() }
            while let one = try await group.next() {
                result.bytes += one.bytes
                result.requests += one.requests
                if let offset = one.mismatchAt { result.mismatchAt = min(result.mismatchAt ?? offset, offset) }
                addNext()
            }
        }
        result.seconds = (ContinuousClock.now - started).secondsValue
        return result
    }

    /// The index of the member whose bytes hold `position` (`starts` ascending, the first 0).
    static func member(at position: Int64, starts: [Int64]) -> Int {
        var low = 0
        var high = starts.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if starts[middle] <= position { low = middle } else { high = middle - 1 }
        }
        return low
    }

    /// Writes each file from the bundle's verified chunks (`DownloadSink.place`: read back, hashed, written, synced,
    /// renamed, then every file indexed with its provenance in one transaction), its folders made first without
    /// following symbolic links. On NIO's thread pool.
    private func extract(
        _ members: [Member], layout: [Range<Int>], from sink: DownloadSink
    ) async throws {
        var placements: [DownloadSink.Placement] = []
        placements.reserveCapacity(members.count)
        for (index, member) in members.enumerated() {
            let destination = URL(fileURLWithPath: member.job.destination).standardizedFileURL.path
            try member.job.folder?.createFolders(for: destination)
            placements.append(
                DownloadSink.Placement(
                    destination: destination, chunks: layout[index], root: member.entry.root,
                    server: member.item.remoteVersion))
        }
        let all = placements
        _ = try await NIOThreadPool.singleton.runIfActive { try sink.place(all) }
    }
}

/// The server as web seed of a bundle: a chunk lies inside one file (the layout was checked), read with `If-Match` on
/// that file's etag.
struct BundleWebSeed: WebSeed {
    let client: NextcloudClient
    let starts: [Int64]
    let files: [(path: String, etag: String, size: Int64)]

    init(client: NextcloudClient, members: [FolderBundleFetcher.Member]) {
        self.client = client
        self.starts = members.map(\.start)
        self.files = members.map { ($0.item.path, $0.entry.etag, $0.entry.size) }
    }

    func fetch(offset: Int64, length: Int) async throws -> [UInt8] {
        guard !files.isEmpty else { throw WebSeedError.refused("an empty bundle") }
        let index = FolderBundleFetcher.member(at: offset, starts: starts)
        let file = files[index]
        let local = offset - starts[index]
        guard local + Int64(length) <= file.size else { throw WebSeedError.refused("a range across two files") }
        return try await NextcloudWebSeed(client: client, path: file.path, etag: file.etag).fetch(
            offset: local, length: length)
    }
}
