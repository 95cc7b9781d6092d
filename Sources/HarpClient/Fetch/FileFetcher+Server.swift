internal import ChunkStore
internal import Foundation
internal import NextcloudClient
internal import SwarmKit

extension FileFetcher {
    /// Downloads the server's version alone, renames it into place and indexes it; returns whether its content root is
    /// the one of the sidecar in use (false without one). A file of at most one block comes in one GET with `If-Match`
    /// (`WholeFileDownload`: that request proves the bytes are the listed version, so nothing is asked before or
    /// after it); a larger one in resumable Range requests.
    func fetchFromServer(_ run: inout Run) async throws -> Bool {
        guard let remote = run.remote else {
            preconditionFailure("the plan fetches from the server only a server version")
        }
        run.report.method = "server"
        if remote.size <= ResumableDownload.defaultBlockSize {
            try await fetchWholeFromServer(&run, remote: remote)
        } else {
            try await fetchResumableFromServer(&run, remote: remote)
        }
        let outcome = try store.index(file: run.destination)
        run.report.root = outcome.root
        // These bytes are the server's: this copy may publish and seed this version (DESIGN §4, "Provenance").
        recordProvenance(&run, root: outcome.root)
        let sameRoot = run.sidecar?.root == outcome.root
        if !sameRoot { run.sidecar = nil }
        return sameRoot
    }

    /// One GET with `If-Match`, into place.
    private func fetchWholeFromServer(_ run: inout Run, remote: RemoteVersion) async throws {
        let path = run.path
        let download = WholeFileDownload(
            client: client, remotePath: path, etag: remote.etag, size: remote.size, destination: run.destination,
            logger: logger, progress: { [progress] in progress.add(path, server: $0) })
        do {
            run.report.bytesFromServer = try await download.run()
        } catch ResumableDownload.Failure.changedOnServer {
            throw FetchError.changedOnServer
        } catch ResumableDownload.Failure.local(let why) {
            throw FetchError.local(why)
        }
    }

    /// Range requests of one block each, several at once, resumable; then a PROPFIND, since a change can land between
    /// two of them.
    private func fetchResumableFromServer(_ run: inout Run, remote: RemoteVersion) async throws {
        let path = run.path
        let download = ResumableDownload(
            client: client, remotePath: path, etag: remote.etag, size: remote.size, destination: run.destination,
            logger: logger, progress: { [progress] in progress.add(path, server: $0) })
        do {
            run.report.bytesFromServer = try await download.run()
        } catch ResumableDownload.Failure.changedOnServer {
            download.discard()
            throw FetchError.changedOnServer
        } catch ResumableDownload.Failure.local(let why) {
            throw FetchError.local(why)
        }
        // A change that landed after the last Range request started: the etag tells.
        if let current = try? await client.item(at: path), current.etag != remote.etag {
            download.discard()
            throw FetchError.changedOnServer
        }
        do {
            try download.finish()
        } catch ResumableDownload.Failure.local(let why) {
            throw FetchError.local(why)
        }
    }

    /// Publishes a fresh sidecar (manifest first) for the server's bytes just downloaded, when the user may write the
    /// folder.
    func publish(_ run: inout Run) async -> FetchPlan.PublishOutcome {
        guard let remote = run.remote, let root = run.report.root else { return .failed("nothing to publish") }
        guard await publisher.mayPublish(nextTo: run.path) else { return .notAllowed }
        do {
            guard let manifest = try store.manifest(root: root) else { return .failed("the index lost the manifest") }
            run.sidecar = try await publisher.publish(
                .version(remote), root: root, chunking: manifest.parameters, salt: Sidecar.randomSalt(),
                manifest: manifest, nextTo: run.path)
            return .published
        } catch {
            return .failed("\(error)")
        }
    }

    /// Keeps seeding the server's bytes just fetched, in the swarm of `sidecar`: this device has them from outside
    /// the swarm, so it super-seeds.
    func seedAfterServer(_ run: Run, sidecar: Sidecar, root: Hash256) async throws {
        guard let manifest = try store.manifest(root: root) else { return }
        var swarmOptions = options.swarm
        swarmOptions.superSeed = true
        let swarm = try await node.open(
            root: root, keys: sidecar.swarmKeys, chunking: manifest.parameters, expectedSize: run.report.size,
            options: swarmOptions)
        try await swarm.seed(manifest: manifest, store: store)
    }
}
