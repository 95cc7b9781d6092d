public import ChunkStore
internal import Foundation
public import Logging
public import NextcloudClient
public import SwarmKit

/// Publishes a server folder's bundle of small files (`FolderSidecar`) for the files this device holds as the server's
/// versions, after `put -R` uploaded them or `get -R` fetched them one by one.
///
/// The bundle lists every small file of the folder it can vouch for: the ones this device holds, and the entries of
/// the bundle already published that are still the server's versions (their manifests come from the published bundle
/// manifest, checked against each file's root). So a device that adds files to a folder does not drop other writers'
/// files from the bundle, and a published bundle that already lists exactly these files is kept as it is (same σ, same
/// swarm). The chunks of the files this device holds are what it can serve (`Published.holding`).
public struct FolderBundlePublisher: Sendable {
    let client: NextcloudClient
    let store: ChunkStore
    let identity: DeviceIdentity
    let sidecars: SidecarFolder
    let logger: Logger
    /// The most files a bundle lists (`FolderSidecar.maxFiles`; lower in tests).
    var maximumFiles = FolderSidecar.maxFiles

    public init(client: NextcloudClient, store: ChunkStore, identity: DeviceIdentity, logger: Logger) {
        self.client = client
        self.store = store
        self.identity = identity
        self.sidecars = SidecarFolder(client: client, logger: logger)
        self.logger = logger
    }

    /// A bundle as published (or found already published), with the chunks this device holds.
    public struct Published: Sendable {
        public var sidecar: FolderSidecar
        public var manifest: Manifest
        /// The bundle's chunks that belong to files this device holds.
        public var holding: ChunkSet
        /// False when the bundle already published listed exactly these files and was kept.
        public var written: Bool
    }

    /// Publishes the bundle of the server folder `folder`. `held` are the small files this device holds as the
    /// server's versions (paths relative to `folder`; their manifests are in the store), `listing` the folder's files
    /// as just listed, by the same relative paths. Nil when there is nothing to bundle or the user may not write the
    /// folder's `.harp/`.
    public func publish(
        folder: String, held: [FolderSidecar.Entry], listing: [String: DAVItem]
    ) async throws
        -> Published?
    {
        let held = held.filter { $0.size > 0 && $0.size <= FolderSidecar.maxFileSize }
        guard !held.isEmpty else { return nil }
        var entries: [String: FolderSidecar.Entry] = [:]
        var manifests: [String: Manifest] = [:]
        for entry in held {
            guard let manifest = try store.manifest(root: entry.root) else { continue }
            entries[entry.path] = entry
            manifests[entry.path] = manifest
        }
        let heldPaths = Set(entries.keys)
        let (existing, _) = await sidecars.readFolderSidecar(of: folder)
        // The published bundle's manifest, read at most once.
        var existingManifest: Manifest?
        if let existing {
            // An entry for the same server version as a file held here but with another content root names other bytes
            // than the server's (this device established its own): its writer is named in the log, and it is replaced.
            for entry in existing.files {
                guard let mine = entries[entry.path], mine.etag == entry.etag, mine.fileid == entry.fileid,
                    mine.root != entry.root
                else { continue }
                logger.warning(
                    "the folder's bundle listed a file with other bytes than the server's: replaced",
                    metadata: [
                        "folder": "\(folder)", "file.path": "\(entry.path)",
                        "writer": "\(DeviceIdentity.fingerprint(of: existing.writerKey))",
                    ])
            }
            // The published bundle's entries that are still the server's versions stay listed.
            let current = existing.files.filter { entry in
                !heldPaths.contains(entry.path) && listing[entry.path].map(entry.describes) == true
            }
            if !current.isEmpty { existingManifest = await sidecars.readFolderManifest(for: existing, of: folder) }
            if !current.isEmpty, let bundle = existingManifest, let ranges = try? existing.layout(of: bundle) {
                let byPath = Dictionary(uniqueKeysWithValues: zip(existing.files.map(\.path), ranges))
                for entry in current {
                    guard let range = byPath[entry.path],
                        let manifest = try? Manifest(
                            parameters: bundle.parameters, chunks: Array(bundle.chunks[range]))
                    else { continue }
                    entries[entry.path] = entry
                    manifests[entry.path] = manifest
                }
            }
        }
        // A folder sidecar lists at most `FolderSidecar.maxFiles` files: this device's own first, the rest file by file.
        var chosen = Array(entries.values)
        if chosen.count > maximumFiles {
            chosen.sort {
                (heldPaths.contains($0.path) ? 0 : 1, $0.path) < (heldPaths.contains($1.path) ? 0 : 1, $1.path)
            }
            chosen.removeLast(chosen.count - maximumFiles)
        }
        let files = chosen.sorted { $0.path < $1.path }
        // Files chunked with other parameters than most cannot share the bundle's manifest.
        let byParameters = Dictionary(grouping: files) { manifests[$0.path]?.parameters ?? .default }
        guard let parameters = byParameters.max(by: { $0.value.count < $1.value.count })?.key else { return nil }
        let listed = files.filter { manifests[$0.path]?.parameters == parameters }
        let listedManifests = listed.compactMap { manifests[$0.path] }
        let manifest = try FolderSidecar.bundle(listedManifests)
        var heldChunks: [Int] = []
        var next = 0
        for (entry, fileManifest) in zip(listed, listedManifests) {
            let count = fileManifest.chunks.count
            if heldPaths.contains(entry.path) { heldChunks.append(contentsOf: next..<(next + count)) }
            next += count
        }
        let holding = ChunkSet(count: manifest.chunks.count, indexes: heldChunks)
        if let existing, existing.files == listed, existing.root == manifest.root {
            return Published(sidecar: existing, manifest: manifest, holding: holding, written: false)
        }
        let anchor = (folder == "/" ? "" : folder) + "/" + FolderSidecar.fileName
        guard await sidecars.mayPublish(nextTo: anchor) else {
            // A reader who may not write the folder still serves its part of a bundle that is current.
            return try await existingPart(
                existing, manifest: existingManifest, of: folder, held: entries.filter { heldPaths.contains($0.key) },
                listing: listing)
        }
        let sidecar = FolderSidecar(
            files: listed, chunking: parameters, root: manifest.root, salt: Sidecar.randomSalt(),
            writerKey: identity.publicKey, sign: identity.sign)
        // Readers refuse a folder sidecar over the limit: one that long (paths of kilobytes) is not written.
        guard sidecar.encoded().count <= FolderSidecar.maxEncodedSize else {
            throw ChunkStoreError.manifestMismatch(
                "the folder sidecar of \(listed.count) files is over \(FolderSidecar.maxEncodedSize) bytes")
        }
        try await sidecars.publishFolderSidecar(sidecar, manifest: manifest, of: folder)
        logger.info(
            "published the folder's bundle of small files",
            metadata: [
                "folder": "\(folder)", "files": "\(listed.count)", "held": "\(heldPaths.count)",
            ])
        return Published(sidecar: sidecar, manifest: manifest, holding: holding, written: true)
    }

    /// Publishes the bundle of the server folder `folder` after `get -R` fetched its files: `jobs` are the walk's
    /// files, `reports` what was fetched. A small file is listed when it was fetched as the version the walk listed
    /// and the store records the local copy as that version's bytes (it is checked again now, so a copy edited since
    /// is left out).
    public func publish(folder: String, fetched reports: [FetchReport], jobs: [FetchJob]) async throws -> Published? {
        let prefix = folder == "/" ? "/" : folder + "/"
        var listing: [String: DAVItem] = [:]
        for job in jobs {
            guard case .finished(let item) = job.source, item.path.hasPrefix(prefix) else { continue }
            listing[String(item.path.dropFirst(prefix.count))] = item
        }
        var held: [FolderSidecar.Entry] = []
        for report in reports where report.remotePath.hasPrefix(prefix) {
            let relative = String(report.remotePath.dropFirst(prefix.count))
            guard let root = report.root, let item = listing[relative], let version = item.remoteVersion,
                report.etag == version.etag, report.size == version.size, version.size > 0,
                version.size <= FolderSidecar.maxFileSize, !item.hasACLList,
                let recorded = try store.establishedProvenance(
                    path: report.destination, fileid: version.fileid, etag: version.etag),
                recorded.root == root
            else { continue }
            held.append(
                FolderSidecar.Entry(
                    path: relative, fileid: version.fileid, etag: version.etag, size: version.size,
                    mtime: version.mtime, root: root))
        }
        return try await publish(folder: folder, held: held, listing: listing)
    }

    /// The published bundle `existing` when every file it lists is still the server's version, with the chunks of the
    /// files in `held` (same path and content root) as the part this device can serve.
    private func existingPart(
        _ existing: FolderSidecar?, manifest read: Manifest?, of folder: String, held: [String: FolderSidecar.Entry],
        listing: [String: DAVItem]
    ) async throws -> Published? {
        guard let existing,
            existing.files.allSatisfy({ listing[$0.path].map($0.describes) == true }),
            existing.files.contains(where: { held[$0.path] == $0 })
        else { return nil }
        var manifest = read
        if manifest == nil { manifest = await sidecars.readFolderManifest(for: existing, of: folder) }
        guard let manifest else { return nil }
        let ranges = try existing.layout(of: manifest)
        let chunks = zip(existing.files, ranges).flatMap { entry, range in held[entry.path] == entry ? Array(range) : []
        }
        return Published(
            sidecar: existing, manifest: manifest, holding: ChunkSet(count: manifest.chunks.count, indexes: chunks),
            written: false)
    }

    /// Serves a published bundle in `node`: the whole of it when this device holds every file, else the part it holds.
    public func serve(_ published: Published, node: SwarmNode, baseOptions: Swarm.Options) async throws -> Swarm {
        let sidecar = published.sidecar
        var options = baseOptions
        // An origin of every file it holds: super-seeded when it holds them all (a part is served with a bitfield).
        options.superSeed = true
        options.filesInVersion = sidecar.files.count
        let keys = sidecar.swarmKeys
        let swarm = try await node.open(
            root: sidecar.root, keys: keys, chunking: sidecar.chunking, expectedSize: sidecar.size, options: options,
            awaitJoin: false)
        try await swarm.seed(manifest: published.manifest, store: store, holding: published.holding)
        return swarm
    }
}

extension FolderSidecar.Entry {
    /// Whether this entry is the server's version that `item` lists: same fileid, etag and size, and the file has no
    /// access rules of its own (such a file travels from the server only).
    func describes(_ item: DAVItem) -> Bool {
        item.etag == etag && item.fileID.map(String.init) == fileid && item.size == size && !item.hasACLList
    }
}
