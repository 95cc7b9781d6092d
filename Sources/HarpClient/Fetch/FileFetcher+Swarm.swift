internal import ChunkStore
internal import Foundation
internal import NextcloudClient
internal import SwarmKit

extension FileFetcher {
    /// Fetches through the swarm of `run.sidecar`: peers, and the server as web seed when `useServer`. On return every
    /// chunk is in the partial file, verified against the sidecar's root; the file is not renamed yet.
    func fetchThroughSwarm(_ run: inout Run, useServer: Bool) async throws {
        guard let sidecar = run.sidecar else {
            preconditionFailure("the plan fetches through a swarm only with a sidecar")
        }
        var swarmOptions = options.swarm
        swarmOptions.useServer = useServer
        if run.remote == nil { swarmOptions.manifestTimeout = .seconds(60) }
        let keys = sidecar.swarmKeys
        let swarm = try await node.open(
            root: sidecar.root, keys: keys, chunking: sidecar.chunking, expectedSize: run.report.size,
            options: swarmOptions)
        run.swarm = swarm
        let box = SinkBox()
        let store = self.store
        let root = sidecar.root
        let destination = run.destination
        // An upload in progress has no server version to seed from.
        let webSeed = run.remote.map { NextcloudWebSeed(client: client, path: run.path, etag: $0.etag) }
        let target = Swarm.FetchTarget(
            openSink: { manifest in
                let sink = try store.openDownload(manifest: manifest, root: root, destination: destination)
                box.sink = sink
                return sink
            },
            webSeed: webSeed)
        let path = run.path
        let reporter = Task { [progress] in
            while !Task.isCancelled {
                progress.update(path, snapshot: await swarm.snapshot)
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
        defer { reporter.cancel() }
        do {
            var known = try store.manifest(root: root)
            if known == nil {
                known = await sidecars.readManifest(for: sidecar, size: run.report.size, nextTo: run.path)
            }
            _ = try await swarm.fetch(target, knownManifest: known)
        } catch SwarmError.changedOnServer {
            try? box.sink?.discard()
            await node.close(keys)
            throw FetchError.changedOnServer
        } catch SwarmError.serverMismatch(let chunk) {
            // The server's own bytes do not match the sidecar's manifest: the sidecar does not describe the server's
            // file. The partial copy goes; the plan treats it as a failed comparison.
            let offset = await swarm.manifest.map { $0.range(of: chunk).lowerBound } ?? 0
            try? box.sink?.discard()
            await node.close(keys)
            throw FetchError.differsFromServer(offset: offset)
        } catch {
            if case SwarmError.noManifest = error { throw error }
            await node.close(keys)
            throw error
        }
        guard let sink = box.sink else { throw FetchError.local("the download was not opened") }
        run.sink = sink
    }

    /// DESIGN §4, "Sampling": the assembled bytes against the server's own before the rename. Every chunk already
    /// matched R; this catches a sidecar whose R is not the server's file (another version, a modified copy). It runs
    /// with --no-server too: 64 ranges of 4 KiB are not a download, and nothing else can catch such a sidecar.
    /// Returns the first differing byte (the partial file is then discarded and the swarm left), or nil.
    func compare(_ run: inout Run, depth: ServerComparison.Depth) async throws -> Int64? {
        guard let sink = run.sink, let remote = run.remote, let keys = run.sidecar?.swarmKeys else {
            preconditionFailure("the plan compares only a swarm download of a server version")
        }
        do {
            try sink.flush()
            let comparison = ServerComparison(
                client: client, remotePath: run.path, etag: remote.etag, size: remote.size)
            let outcome = try await comparison.check(localPath: sink.partPath, depth: depth)
            run.report.check = outcome
            guard let offset = outcome.mismatchAt else { return nil }
            try? sink.discard()
            run.sink = nil
            run.report.check = nil
            await node.close(keys)
            return offset
        } catch FetchError.changedOnServer {
            try? sink.discard()
            await node.close(keys)
            throw FetchError.changedOnServer
        }
    }

    /// Renames the swarm's bytes into place, records them as the server's version (downloaded as it and compared
    /// with it), and republishes the sidecar with the server's new etag when a lock moved it.
    func finishFromSwarm(_ run: inout Run, republish: Bool) async throws {
        guard let sink = run.sink, let swarm = run.swarm, let sidecar = run.sidecar else {
            preconditionFailure("the plan finishes a swarm download only after it")
        }
        try sink.finish()
        if await swarm.fetchFinished(store: store) { await node.superSeeding(sidecar.swarmKeys) }
        recordProvenance(&run, root: sidecar.root)
        let snapshot = await swarm.snapshot
        progress.update(run.path, snapshot: snapshot)
        run.report.root = sidecar.root
        run.report.swarmID = sidecar.swarmKeys.swarmID
        run.report.bytesFromPeers = snapshot.bytesFromPeers
        run.report.bytesFromServer = snapshot.bytesFromServer
        run.report.bytesFromLocal = snapshot.bytesFromLocal
        run.report.bytesUploaded = snapshot.bytesUploaded
        run.report.bytesFromRelayedPeers = snapshot.bytesFromRelayedPeers
        run.report.bytesUploadedRelayed = snapshot.bytesUploadedRelayed
        run.report.bytesWasted = snapshot.bytesWasted
        run.report.peersUsed = snapshot.peersUsed
        run.report.badChunks = snapshot.badChunks
        if !options.seedAfter { await node.finish(sidecar.swarmKeys, linger: options.linger) }
        if republish, let remote = run.remote, await publisher.mayPublish(nextTo: run.path) {
            // The etag moved without the bytes (a lock): the comparison passed, the root and σ stay.
            _ = try? await publisher.publish(
                .version(remote), root: sidecar.root, chunking: sidecar.chunking, salt: sidecar.saltBytes,
                manifest: nil, nextTo: run.path)
        }
    }
}
