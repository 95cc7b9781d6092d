import ChunkStore
import Foundation
import Logging
import NextcloudClient
import SwarmKit

/// What fetching one file did.
struct FetchReport: Sendable {
    var remotePath: String
    var destination: String
    var size: Int64
    var root: Hash256?
    /// S of the swarm the file was fetched through or is seeded in, if any.
    var swarmID: [UInt8]?
    /// The server version's etag when the fetch began.
    var etag: String?
    /// The comparison with the server's bytes before the rename (nil when the bytes came from the server itself).
    var check: ServerComparison.Outcome?
    /// "swarm" (peers and web seed), "server" (the server alone).
    var method: String
    var bytesFromPeers: Int64 = 0
    var bytesFromServer: Int64 = 0
    var bytesFromLocal: Int64 = 0
    /// Bytes this process sent to other peers while it fetched the file.
    var bytesUploaded: Int64 = 0
    /// Bytes received and not used: endgame duplicates, blocks that arrived after a cancel or choke, bad chunks.
    var bytesWasted: Int64 = 0
    var peersUsed = 0
    var badChunks = 0
    var seconds: Double = 0
    var notes: [String] = []

    var json: [String: Any] {
        [
            "event": "file-done", "path": remotePath, "destination": destination, "size": size,
            "swarm": swarmID?.hexString ?? NSNull(), "method": method, "check": check?.json ?? NSNull(),
            "bytesFromPeers": bytesFromPeers,
            "bytesFromServer": bytesFromServer, "bytesFromLocal": bytesFromLocal, "bytesUploaded": bytesUploaded,
            "bytesWasted": bytesWasted, "peersUsed": peersUsed,
            "badChunks": badChunks, "seconds": (seconds * 1000).rounded() / 1000, "notes": notes,
        ]
    }
}

/// A box for the download sink the swarm opens once the manifest is known.
private final class SinkBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: DownloadSink?
    var sink: DownloadSink? {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}

/// The flow of `get` for one file (docs/engine.md): check access, read the sidecar, fetch through the swarm (peers
/// and the server as web seed) or from the server alone, compare with the server's bytes, rename into place, publish
/// a sidecar when there was none, and optionally keep seeding.
struct FileFetcher: Sendable {
    let client: NextcloudClient
    let store: ChunkStore
    let node: SwarmNode?
    let identity: DeviceIdentity
    let useServer: Bool
    /// `--verify-server`: compare every byte that came from peers with the server's before the rename.
    var verifyServer = false
    let seedAfter: Bool
    /// Without `seedAfter`: how long a finished swarm keeps serving peers still fetching it.
    let linger: Duration
    let baseOptions: Swarm.Options
    let logger: Logger
    let progress: ProgressBoard

    func fetch(_ item: DAVItem, to destination: String) async throws -> FetchReport {
        let destination = URL(fileURLWithPath: destination).standardizedFileURL.path
        let started = ContinuousClock.now
        guard let remote = item.remoteVersion else {
            throw NextcloudError(.malformedResponse, path: item.path, detail: "no fileid, etag or size in PROPFIND")
        }
        var report = FetchReport(remotePath: item.path, destination: destination, size: remote.size, method: "swarm")
        report.etag = remote.etag
        try FileManager.default.createDirectory(
            atPath: (destination as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let sidecars = SidecarFolder(client: client, logger: logger)

        var sidecar: Sidecar?
        // DESIGN §4: a file with its own ACL rules (nc:acl-list) travels from the server only, with no sidecar.
        let ownACL = item.hasACLList
        if ownACL { report.notes.append("the file has its own access rules: fetched from the server only") }
        if let node, !ownACL, await node.hasSignaling {
            let (found, note) = await sidecars.read(forFileAt: item.path, fileID: remote.fileid)
            if let note { report.notes.append(note) }
            if let found {
                switch found.validity(for: remote) {
                case .valid: sidecar = found
                case .needsSpotCheck:
                    sidecar = found
                    report.notes.append(
                        "etag moved but size and mtime did not: using the sidecar, compared with the server before the "
                            + "rename")
                case .stale: report.notes.append("the sidecar is stale (the file changed); using the server")
                }
            } else if note == nil {
                report.notes.append("no sidecar yet: fetching from the server, then publishing one")
            }
        } else if node != nil {
            report.notes.append("no signaling server configured: fetching from the server alone")
        }

        progress.begin(item.path, size: remote.size)
        defer { progress.end(item.path) }

        if let found = sidecar, let node {
            do {
                try await fetchThroughSwarm(
                    item: item, remote: remote, sidecar: found, node: node, destination: destination,
                    report: &report)
                if found.etag != remote.etag, await sidecars.mayPublish(nextTo: item.path) {
                    // The etag moved without the bytes (a lock): the comparison passed, the root and σ stay.
                    try? await sidecars.publish(
                        makeSidecar(
                            remote: remote, name: SidecarFolder.name(of: item.path), root: found.root,
                            chunking: found.chunking, salt: found.saltBytes), nextTo: item.path)
                }
                report.notes += ClaimedChecksums(item.checksums).notes(forFileAt: destination)
                report.seconds = (ContinuousClock.now - started).secondsValue
                return report
            } catch SwarmError.noManifest {
                report.notes.append("no peer answered with the manifest in time: using the server")
                await node.close(found.swarmKeys)
                guard useServer else { throw FetchError.peersOnly("no peer has this file and --no-server was given") }
            } catch FetchError.differsFromServer(let offset) {
                // The swarm's bytes verify against the sidecar's root, but they are not the server's file: the
                // sidecar lies or was made from a modified copy. The server's bytes decide (and replace it below).
                report.notes.append(
                    "the copy from peers differs from the server's file at byte \(offset): the sidecar does not describe "
                        + "the server's file; fetching from the server")
                report.check = nil
                guard useServer else { throw FetchError.differsFromServer(offset: offset) }
            }
        }
        guard useServer else { throw FetchError.peersOnly("no swarm for this file and --no-server was given") }

        report.method = "server"
        let fetch = ServerFetch(
            client: client, remotePath: item.path, etag: remote.etag, size: remote.size, destination: destination,
            logger: logger, progress: { [progress] in progress.add(item.path, server: $0) })
        do {
            report.bytesFromServer = try await fetch.run()
        } catch FetchError.changedOnServer {
            fetch.discard()
            throw FetchError.changedOnServer
        }
        // A change that landed after the last Range request started: the etag tells.
        if let current = try? await client.item(at: item.path), current.etag != remote.etag {
            fetch.discard()
            throw FetchError.changedOnServer
        }
        try fetch.finish()
        let outcome = try store.index(file: destination)
        report.root = outcome.root
        // These bytes are the server's: this copy may publish and seed this version (DESIGN §4, "Provenance").
        recordProvenance(destination, root: outcome.root, remote: remote, report: &report)
        var published: Sidecar? = sidecar?.root == outcome.root ? sidecar : nil
        if let sidecar, sidecar.root != outcome.root {
            report.notes.append("the sidecar's content root differs from the server's bytes: replacing it")
        }
        if let node, !ownACL, await node.hasSignaling, published == nil {
            if await sidecars.mayPublish(nextTo: item.path) {
                do {
                    let fresh = makeSidecar(
                        remote: remote, name: SidecarFolder.name(of: item.path), root: outcome.root,
                        chunking: outcome.parameters, salt: Sidecar.randomSalt())
                    // The manifest first: a fetcher that finds the sidecar can then start without any peer.
                    if let manifest = try store.manifest(root: outcome.root) {
                        try await sidecars.publishManifest(manifest, for: fresh, nextTo: item.path)
                    }
                    try await sidecars.publish(fresh, nextTo: item.path)
                    published = fresh
                    report.notes.append("published the sidecar")
                } catch {
                    report.notes.append("could not publish the sidecar: \(error)")
                }
            } else {
                report.notes.append("no write access to the folder: no sidecar published")
            }
        }
        report.swarmID = published?.swarmKeys.swarmID
        report.notes += ClaimedChecksums(item.checksums).notes(forFileAt: destination)
        if seedAfter, let node, !ownACL, await node.hasSignaling, let published,
            let manifest = try store.manifest(root: outcome.root)
        {
            var options = baseOptions
            options.superSeed = true
            let swarm = try await node.open(
                root: outcome.root, keys: published.swarmKeys, chunking: outcome.parameters,
                expectedSize: remote.size, options: options)
            try await swarm.seed(manifest: manifest, store: store)
        }
        report.seconds = (ContinuousClock.now - started).secondsValue
        return report
    }

    private func fetchThroughSwarm(
        item: DAVItem, remote: RemoteVersion, sidecar: Sidecar, node: SwarmNode, destination: String,
        report: inout FetchReport
    ) async throws {
        var options = baseOptions
        options.useServer = useServer
        let keys = sidecar.swarmKeys
        let swarm = try await node.open(
            root: sidecar.root, keys: keys, chunking: sidecar.chunking, expectedSize: remote.size, options: options)
        let box = SinkBox()
        let store = self.store
        let root = sidecar.root
        let target = Swarm.FetchTarget(
            openSink: { manifest in
                let sink = try store.openDownload(manifest: manifest, root: root, destination: destination)
                box.sink = sink
                return sink
            },
            webSeed: NextcloudWebSeed(client: client, path: item.path, etag: remote.etag))
        let reporter = Task { [progress] in
            while !Task.isCancelled {
                progress.update(item.path, snapshot: await swarm.snapshot)
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
        defer { reporter.cancel() }
        do {
            var known = try store.manifest(root: sidecar.root)
            if known == nil {
                known = await SidecarFolder(client: client, logger: logger).readManifest(
                    for: sidecar, size: remote.size, nextTo: item.path)
            }
            _ = try await swarm.fetch(target, knownManifest: known)
        } catch SwarmError.changedOnServer {
            try? box.sink?.discard()
            await node.close(keys)
            throw FetchError.changedOnServer
        } catch {
            if case SwarmError.noManifest = error { throw error }
            await node.close(keys)
            throw error
        }
        guard let sink = box.sink else { throw FetchError.local("the download was not opened") }
        // DESIGN §4, "Sampling": the assembled bytes against the server's own before the rename. Every chunk already
        // matched R; this catches a sidecar whose R is not the server's file (another version, a modified copy). It
        // runs with --no-server too: 64 ranges of 4 KiB are not a download, and nothing else can catch such a sidecar.
        do {
            try sink.flush()
            let comparison = ServerComparison(
                client: client, remotePath: item.path, etag: remote.etag, size: remote.size)
            var generator = SystemRandomNumberGenerator()
            let outcome =
                verifyServer
                ? try await comparison.compareEveryByte(localPath: sink.partPath)
                : try await comparison.sample(localPath: sink.partPath, using: &generator)
            report.check = outcome
            if let offset = outcome.mismatchAt {
                try? sink.discard()
                await node.close(keys)
                throw FetchError.differsFromServer(offset: offset)
            }
        } catch FetchError.changedOnServer {
            try? sink.discard()
            await node.close(keys)
            throw FetchError.changedOnServer
        }
        try sink.finish()
        await swarm.fetchFinished(store: store)
        // Downloaded as this server version and compared with it: recorded, so that `seed` of this copy may stand in
        // for the version later (as long as the file stays unchanged).
        recordProvenance(destination, root: sidecar.root, remote: remote, report: &report)
        let snapshot = await swarm.snapshot
        progress.update(item.path, snapshot: snapshot)
        report.root = sidecar.root
        report.swarmID = keys.swarmID
        report.bytesFromPeers = snapshot.bytesFromPeers
        report.bytesFromServer = snapshot.bytesFromServer
        report.bytesFromLocal = snapshot.bytesFromLocal
        report.bytesUploaded = snapshot.bytesUploaded
        report.bytesWasted = snapshot.bytesWasted
        report.peersUsed = snapshot.peersUsed
        report.badChunks = snapshot.badChunks
        if !seedAfter { await node.finish(keys, linger: linger) }
    }

    /// Fetches a file whose upload is still running: from its pending sidecar, from peers only (the server does not
    /// have it yet). The bytes are verified against the sidecar's content root; they cannot be compared with the server's.
    func fetchPending(remotePath: String, sidecar: Sidecar, to destination: String) async throws -> FetchReport {
        let destination = URL(fileURLWithPath: destination).standardizedFileURL.path
        let started = ContinuousClock.now
        guard let node, await node.hasSignaling else {
            throw NextcloudError(
                .notFoundOrNoAccess, path: remotePath, detail: "upload in progress; needs a signaling server")
        }
        try FileManager.default.createDirectory(
            atPath: (destination as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var report = FetchReport(remotePath: remotePath, destination: destination, size: sidecar.size, method: "swarm")
        report.notes.append("fetched from peers while the upload is running; not checked against the server")
        progress.begin(remotePath, size: sidecar.size)
        defer { progress.end(remotePath) }
        var options = baseOptions
        options.useServer = false
        options.manifestTimeout = .seconds(60)
        let keys = sidecar.swarmKeys
        let swarm = try await node.open(
            root: sidecar.root, keys: keys, chunking: sidecar.chunking, expectedSize: sidecar.size, options: options)
        let box = SinkBox()
        let store = self.store
        let root = sidecar.root
        let target = Swarm.FetchTarget(
            openSink: { manifest in
                let sink = try store.openDownload(manifest: manifest, root: root, destination: destination)
                box.sink = sink
                return sink
            }, webSeed: nil)
        var known = try store.manifest(root: root)
        if known == nil {
            known = await SidecarFolder(client: client, logger: logger).readManifest(
                for: sidecar, size: sidecar.size, nextTo: remotePath)
        }
        do {
            _ = try await swarm.fetch(target, knownManifest: known)
        } catch {
            await node.close(keys)
            throw error
        }
        guard let sink = box.sink else { throw FetchError.local("the download was not opened") }
        try sink.finish()
        await swarm.fetchFinished(store: store)
        let snapshot = await swarm.snapshot
        report.root = root
        report.swarmID = keys.swarmID
        report.bytesFromPeers = snapshot.bytesFromPeers
        report.bytesFromLocal = snapshot.bytesFromLocal
        report.bytesUploaded = snapshot.bytesUploaded
        report.bytesWasted = snapshot.bytesWasted
        report.peersUsed = snapshot.peersUsed
        report.badChunks = snapshot.badChunks
        if !seedAfter { await node.finish(keys, linger: linger) }
        report.seconds = (ContinuousClock.now - started).secondsValue
        return report
    }

    /// Records that the file now at `destination` is the server's version `remote`. A failure (the file changed
    /// already) costs only that: `seed` will compare the file with the server before it vouches for it.
    private func recordProvenance(
        _ destination: String, root: Hash256, remote: RemoteVersion, report: inout FetchReport
    ) {
        do {
            try store.recordProvenance(path: destination, root: root, server: remote, source: .download)
        } catch {
            report.notes.append("not recorded as the server's version (\(error))")
        }
    }

    func makeSidecar(
        remote: RemoteVersion, name: String, root: Hash256, chunking: ChunkingParameters, salt: [UInt8]
    ) -> Sidecar {
        Sidecar(
            fileid: remote.fileid, etag: remote.etag, name: name, size: remote.size, mtime: remote.mtime,
            chunking: chunking, root: root, salt: salt, pending: false, writerKey: identity.publicKey,
            sign: identity.sign)
    }
}
