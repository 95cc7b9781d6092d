public import ChunkStore
internal import Foundation
public import Logging
public import NextcloudClient
public import SwarmKit

/// Publishes what a fetcher needs to find a version's swarm: the manifest first, then the sidecar, signed with this
/// device's key, in the `.harp/` folder next to the file. The order matters: a fetcher that finds the sidecar can then
/// start from the published manifest without any peer (docs/engine.md, "Sidecars").
///
/// The one place `get` (after a server download, or when a lock moved the etag), `put` (pending, then final) and
/// `seed` write sidecars.
public struct SidecarPublisher: Sendable {
    /// What a sidecar describes.
    public enum Subject: Sendable, Equatable {
        /// A version the server has (fileid, etag, size, mtime).
        case version(RemoteVersion)
        /// An upload still running: the local file's size and mtime; readers fetch from peers only.
        case pendingUpload(size: Int64, mtime: Int64)
    }

    let folder: SidecarFolder
    let identity: DeviceIdentity

    /// A publisher that signs with `identity`.
    public init(client: NextcloudClient, identity: DeviceIdentity, logger: Logger) {
        self.folder = SidecarFolder(client: client, logger: logger, remembering: SidecarFolder.KnownFolders())
        self.identity = identity
    }

    /// The signed sidecar of `subject`, named `name`, for the content root `root` with the swarm salt `salt`.
    public func sidecar(
        for subject: Subject, name: String, root: Hash256, chunking: ChunkingParameters, salt: [UInt8]
    ) -> Sidecar {
        switch subject {
        case .version(let remote):
            Sidecar(
                fileid: remote.fileid, etag: remote.etag, name: name, size: remote.size, mtime: remote.mtime,
                chunking: chunking, root: root, salt: salt, pending: false, writerKey: identity.publicKey,
                sign: identity.sign)
        case .pendingUpload(let size, let mtime):
            Sidecar(
                fileid: nil, etag: nil, name: name, size: size, mtime: mtime, chunking: chunking, root: root,
                salt: salt, pending: true, writerKey: identity.publicKey, sign: identity.sign)
        }
    }

    /// Publishes `manifest` (when given) and then the sidecar of `subject` next to the file at `path`; returns the
    /// sidecar. Without a manifest only the sidecar is rewritten (its manifest, named after it, is already there).
    @discardableResult
    public func publish(
        _ subject: Subject, root: Hash256, chunking: ChunkingParameters, salt: [UInt8], manifest: Manifest?,
        nextTo path: String
    ) async throws -> Sidecar {
        let sidecar = sidecar(
            for: subject, name: SidecarFolder.name(of: path), root: root, chunking: chunking, salt: salt)
        if let manifest { try await folder.publishManifest(manifest, for: sidecar, nextTo: path) }
        try await folder.publish(sidecar, nextTo: path)
        return sidecar
    }

    /// Whether the user may create files in the folder of `path` (the sidecar goes into its `.harp/`).
    public func mayPublish(nextTo path: String) async -> Bool {
        await folder.mayPublish(nextTo: path)
    }
}
