public import ChunkStore
internal import Foundation
public import Logging
public import NextcloudClient
public import SwarmKit

/// The flow of `put` for one file: index it, publish a pending sidecar (with a signaling server) and seed it while
/// the bytes go up with Nextcloud's chunked upload v2, then publish the final sidecar with the server's fileid and
/// etag under the same σ, so the swarm stays the same.
public struct FileUploader: Sendable {
    /// What uploading one file did.
    public struct Outcome: Sendable {
        public var size: Int64
        public var root: Hash256
        public var fileID: Int64?
        /// S of the swarm the file is seeded in (nil without a signaling server).
        public var swarmID: [UInt8]?
    }

    let client: NextcloudClient
    let store: ChunkStore
    let node: SwarmNode
    let publisher: SidecarPublisher
    let sidecars: SidecarFolder
    let baseOptions: Swarm.Options
    /// Keep seeding after the upload (else the swarm is left once the final sidecar is out).
    let seedAfter: Bool
    let logger: Logger

    public init(
        client: NextcloudClient, store: ChunkStore, node: SwarmNode, identity: DeviceIdentity,
        baseOptions: Swarm.Options, seedAfter: Bool, logger: Logger
    ) {
        self.client = client
        self.store = store
        self.node = node
        self.publisher = SidecarPublisher(client: client, identity: identity, logger: logger)
        self.sidecars = SidecarFolder(client: client, logger: logger)
        self.baseOptions = baseOptions
        self.seedAfter = seedAfter
        self.logger = logger
    }

    /// What uploading a small file of a folder did: its content root and what the server answered.
    public struct SmallOutcome: Sendable {
        public var local: String
        public var remote: String
        public var size: Int64
        public var root: Hash256
        public var fileID: Int64?
        /// The etag the PUT answered (quotes included), to check the folder's listing against.
        public var etag: String?
    }

    /// Uploads a small file of a folder (`put -R`) with one PUT: no sidecar or swarm of its own, since the folder's
    /// bundle will carry it (`FolderBundlePublisher`). Its folder must exist.
    public func uploadSmall(_ local: String, to remote: String) async throws -> SmallOutcome {
        let outcome = try store.index(file: local)
        let attributes = try FileManager.default.attributesOfItem(atPath: local)
        let modified = attributes[.modificationDate] as? Date ?? Date()
        let result = try await client.uploadFile(at: local, to: remote, modified: modified)
        return SmallOutcome(
            local: local, remote: remote, size: outcome.size, root: outcome.root, fileID: result.fileID,
            etag: result.etag)
    }

    /// The bundle entries of small files uploaded into the server folder `folder` (`listing`: its files as listed
    /// after the uploads, by path relative to it). A file is listed when the server still has the version its PUT
    /// made and the local file is unchanged since it was indexed; its provenance is recorded then (DESIGN §4), so
    /// `seed` stands for it without comparing it. Others are left out, to the file-by-file path.
    public func bundleEntries(
        _ uploads: [SmallOutcome], in folder: String, listing: [String: DAVItem]
    ) -> [FolderSidecar.Entry] {
        let prefix = folder == "/" ? "/" : folder + "/"
        var entries: [FolderSidecar.Entry] = []
        for upload in uploads where upload.remote.hasPrefix(prefix) {
            let relative = String(upload.remote.dropFirst(prefix.count))
            guard let item = listing[relative], let version = item.remoteVersion, version.size == upload.size,
                upload.etag == nil || upload.etag == version.etag, !item.hasACLList
            else { continue }
            do {
                try store.recordProvenance(path: upload.local, root: upload.root, server: version, source: .upload)
            } catch {
                logger.warning(
                    "the file changed during its upload: not recorded as the server's bytes",
                    metadata: ["file.path": "\(upload.local)", "error": "\(error)"])
                continue
            }
            entries.append(
                FolderSidecar.Entry(
                    path: relative, fileid: version.fileid, etag: version.etag, size: version.size,
                    mtime: version.mtime, root: upload.root))
        }
        return entries
    }

    /// Uploads the local file `local` to the remote path `remote`; its folder is made when missing, unless the caller
    /// made it (`folderExists`).
    public func upload(_ local: String, to remote: String, folderExists: Bool = false) async throws -> Outcome {
        let outcome = try store.index(file: local)
        guard let manifest = try store.manifest(root: outcome.root) else {
            throw FetchError.local("the index lost the manifest of \(local)")
        }
        if !folderExists { try await sidecars.ensureFolders(SidecarFolder.parent(of: remote)) }
        let attributes = try FileManager.default.attributesOfItem(atPath: local)
        let modified = attributes[.modificationDate] as? Date ?? Date()
        let announce = await node.hasSignaling
        // One σ for the version: the pending sidecar's, kept by the final one, so the swarm stays the same.
        let salt = Sidecar.randomSalt()
        let keys = SwarmKeys(contentRoot: outcome.root.bytes, salt: salt)
        if announce {
            // The pending sidecar goes first, so teammates can fetch from this device while the upload runs.
            try await publisher.publish(
                .pendingUpload(size: outcome.size, mtime: Int64(modified.timeIntervalSince1970)), root: outcome.root,
                chunking: outcome.parameters, salt: salt, manifest: manifest, nextTo: remote)
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
                try store.recordProvenance(path: local, root: outcome.root, server: version, source: .upload)
            } catch {
                logger.warning(
                    "the file changed during its upload: not recorded as the server's bytes",
                    metadata: ["file.path": "\(local)", "error": "\(error)"])
            }
        }
        if announce, let version = item.remoteVersion {
            try await publisher.publish(
                .version(version), root: outcome.root, chunking: outcome.parameters, salt: salt, manifest: manifest,
                nextTo: remote)
            await sidecars.removePending(nextTo: remote)
        }
        if announce, !seedAfter { await node.close(keys) }
        return Outcome(
            size: outcome.size, root: outcome.root, fileID: result.fileID ?? item.fileID,
            swarmID: announce ? keys.swarmID : nil)
    }
}
