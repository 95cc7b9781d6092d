public import ChunkStore
internal import Foundation
public import Logging
public import NextcloudClient
public import SwarmKit

/// The files of one folder being seeded, kept in step with the disk and the server at each scan.
///
/// A file is offered to its version's swarm only when this device can stand for the server's bytes (DESIGN §4,
/// "Provenance"): a valid sidecar names the same content root, or the file is unchanged since this device downloaded
/// or uploaded that server version, or every byte was compared with the server's. A valid sidecar that names another
/// root means this copy differs: it is reported and never replaced. Each scan also re-checks access: a file that gained
/// its own ACL rules stops being seeded and its sidecar is deleted.
public actor FolderSeeder {
    struct Seeded {
        var root: Hash256
        var keys: SwarmKeys
        var size: Int64
        var mtime: Date
        var etag: String
        /// The etag of the file's sidecar as the last scan listed it (nil until a scan has seen it): when it changes,
        /// someone rewrote or deleted the sidecar and the file is looked at again.
        var sidecarETag: String?
    }

    /// How a seeded file's bytes were found to be the server's.
    public enum Basis: String, Sendable {
        case sidecar, download, upload, comparison
    }

    /// Why a file is not seeded.
    public enum Skip: Sendable, Equatable {
        /// It has its own ACL rules: it travels from the server only.
        case ownAccessRules
        /// It has no sidecar, and the user may not write the folder to publish one.
        case cannotPublish
        /// It differs from the server's file or from its sidecar (the reason says which).
        case mismatch(String)

        /// The reason in a few words.
        public var reason: String {
            switch self {
            case .ownAccessRules: "the file has its own access rules"
            case .cannotPublish: "no sidecar and no write access to publish one"
            case .mismatch(let reason): reason
            }
        }
    }

    /// What a scan did to one file, for the user.
    public enum Event: Sendable {
        /// The file is offered to its swarm.
        case seeding(path: String, swarmID: [UInt8], size: Int64, basis: Basis)
        /// The file is not seeded.
        case skipped(path: String, why: Skip)
        /// The file is no longer seeded: gone locally or on the server (`reason` nil), or it gained its own access
        /// rules (`sidecarDeleted` says whether its sidecar is gone).
        case unseeded(path: String, ownAccessRules: Bool, sidecarDeleted: Bool)
        /// Something failed; `path` nil when the folder could not be listed.
        case error(path: String?, message: String)
    }

    let client: NextcloudClient
    let store: ChunkStore
    let node: SwarmNode
    let publisher: SidecarPublisher
    let localRoot: String
    let remoteRoot: String
    let baseOptions: Swarm.Options
    let report: @Sendable (Event) -> Void
    let logger: Logger
    private var seeded: [String: Seeded] = [:]
    /// Files found not to match the server, by their local mtime and the server's etag (not retried until one
    /// changes).
    private var mismatched: [String: (mtime: Date, etag: String)] = [:]
    /// Files skipped for their own access rules (reported once).
    private var ownRules: Set<String> = []
    /// Whether this device may publish sidecars in each folder, as found in this scan (one PROPFIND per folder, not
    /// per file).
    private var publishableFolders: [String: Bool] = [:]
    /// Files of `FolderSidecar.maxFileSize` or less, established as the server's version: they are served through the
    /// folder's bundle (one swarm, one join), not through swarms of their own, which no fetcher would use.
    private var bundleFiles: [String: (entry: FolderSidecar.Entry, basis: Basis, mtime: Date)] = [:]
    /// The bundle seeded now, and the etag of its folder sidecar as the last scan listed it.
    private var bundle: (sidecar: FolderSidecar, keys: SwarmKeys, swarm: Swarm)?
    private var bundleSidecarTag: String?
    /// The small files the bundle was last refreshed for.
    private var bundleHeld: [FolderSidecar.Entry] = []
    let identity: DeviceIdentity
    /// Files looked at concurrently in a scan.
    static let parallelFiles = 8

    /// A seeder of the local folder `localRoot`, which mirrors the server folder `remoteRoot`; `report` hears what each
    /// scan does.
    public init(
        client: NextcloudClient, store: ChunkStore, node: SwarmNode, identity: DeviceIdentity, localRoot: String,
        remoteRoot: String, baseOptions: Swarm.Options, logger: Logger, report: @escaping @Sendable (Event) -> Void
    ) {
        self.client = client
        self.store = store
        self.node = node
        self.publisher = SidecarPublisher(client: client, identity: identity, logger: logger)
        self.identity = identity
        self.localRoot = localRoot
        self.remoteRoot = remoteRoot
        self.baseOptions = baseOptions
        self.report = report
        self.logger = logger
    }

    /// The files seeded now, by path relative to the folder.
    public var seededFiles: [String] {
        guard bundle != nil else { return seeded.keys.sorted() }
        return (Array(seeded.keys) + bundleHeld.map(\.path)).sorted()
    }

    /// The folder's bundle seeded now, if any.
    public var seededBundle: FolderSidecar? { bundle?.sidecar }

    /// One pass: walk the server folder, match local files, start seeding new and changed ones, stop removed ones and
    /// ones that gained their own access rules.
    public func scan() async {
        var remoteItems: [String: DAVItem] = [:]
        // The sidecars' etags, by their remote path: the walk lists `.harp/` too, so watching them costs nothing.
        var sidecarTags: [String: String] = [:]
        do {
            for try await item in client.walk(remoteRoot) where !item.isFolder {
                let relative = String(item.path.dropFirst(remoteRoot.count)).trimmingPrefix("/")
                if relative.split(separator: "/").contains(where: { $0 == Sidecar.folderName }) {
                    if let etag = item.etag { sidecarTags[item.path] = etag }
                    continue
                }
                remoteItems[String(relative)] = item
            }
        } catch {
            report(.error(path: nil, message: "cannot list \(remoteRoot): \(error)"))
            return
        }
        var present = Set<String>()
        var work: [(relative: String, path: String, item: DAVItem, mtime: Date, sidecarTag: String?)] = []
        for (relative, item) in remoteItems.sorted(by: { $0.key < $1.key }) {
            let path = localRoot + "/" + relative
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                let size = (attributes[.size] as? NSNumber)?.int64Value, size == item.size,
                let mtime = attributes[.modificationDate] as? Date, let etag = item.etag
            else { continue }
            if item.hasACLList {
                await revokeForOwnRules(relative: relative, item: item)
                continue
            }
            ownRules.remove(relative)
            present.insert(relative)
            let sidecarTag = item.fileID.flatMap { sidecarTags[SidecarFolder.folder(for: item.path) + "/\($0).harp"] }
            if let current = seeded[relative], current.size == size, current.mtime == mtime, current.etag == etag,
                current.sidecarETag == sidecarTag
            {
                continue
            }
            if let bundled = bundleFiles[relative], bundled.entry.etag == etag, bundled.entry.size == size,
                bundled.mtime == mtime
            {
                continue
            }
            if let memo = mismatched[relative], memo.mtime == mtime, memo.etag == etag { continue }
            work.append((relative, path, item, mtime, sidecarTag))
        }
        // Files are looked at `Self.parallelFiles` at a time: each costs a few requests to the server and a join at the
        // signaling server, which one after the other made a folder of thousands of files ready at about one a second.
        // The actor's state is touched only between those awaits, and each file only by its own task.
        publishableFolders = [:]
        await withTaskGroup(of: Void.self) { group in
            var next = work.makeIterator()
            for _ in 0..<Self.parallelFiles {
                guard let file = next.next() else { break }
                group.addTask {
                    await self.seedFile(
                        relative: file.relative, path: file.path, item: file.item, mtime: file.mtime,
                        sidecarTag: file.sidecarTag)
                }
            }
            while await group.next() != nil {
                guard let file = next.next() else { continue }
                group.addTask {
                    await self.seedFile(
                        relative: file.relative, path: file.path, item: file.item, mtime: file.mtime,
                        sidecarTag: file.sidecarTag)
                }
            }
        }
        for (relative, entry) in seeded where !present.contains(relative) {
            await node.close(entry.keys)
            seeded[relative] = nil
            report(.unseeded(path: relative, ownAccessRules: false, sidecarDeleted: false))
        }
        for relative in bundleFiles.keys where !present.contains(relative) { bundleFiles[relative] = nil }
        await refreshBundle(
            listedTag: sidecarTags[SidecarFolder.folderSidecarPath(of: remoteRoot)], remoteItems: remoteItems)
    }

    /// DESIGN §4: a file with its own ACL rules travels from the server only. A file that gained them after its sidecar
    /// was published stops being seeded, and its sidecar and manifest are deleted so the folder's readers no longer
    /// learn its swarm (what they learnt before cannot be taken back: docs/threat-model.md).
    private func revokeForOwnRules(relative: String, item: DAVItem) async {
        let sidecars = SidecarFolder(client: client, logger: logger)
        if let entry = seeded.removeValue(forKey: relative) {
            await node.close(entry.keys)
            var deleted = false
            if let fileID = item.fileID {
                deleted = await sidecars.remove(forFileAt: item.path, fileID: String(fileID))
            }
            report(.unseeded(path: relative, ownAccessRules: true, sidecarDeleted: deleted))
        } else if !ownRules.contains(relative) {
            if let fileID = item.fileID {
                _ = await sidecars.remove(forFileAt: item.path, fileID: String(fileID))
            }
            report(.skipped(path: relative, why: .ownAccessRules))
        }
        ownRules.insert(relative)
    }

    /// Decides whether the local file at `path` may stand for the server's `item`, and seeds it if so. `sidecarTag` is
    /// the etag of its sidecar in this scan's listing (a sidecar this call publishes changes it, so the next scan looks
    /// once more and finds the same swarm).
    private func seedFile(relative: String, path: String, item: DAVItem, mtime: Date, sidecarTag: String?) async {
        guard let remote = item.remoteVersion else { return }
        do {
            let outcome = try store.index(file: path)
            guard let manifest = try store.manifest(root: outcome.root) else { return }
            if outcome.size > 0, outcome.size <= FolderSidecar.maxFileSize {
                return try await considerForBundle(
                    relative: relative, path: path, item: item, remote: remote, root: outcome.root, mtime: mtime)
            }
            bundleFiles[relative] = nil
            // The walk lists `.harp/`: a file whose sidecar it did not list has none (no GET for it).
            var sidecar: Sidecar?
            if sidecarTag != nil {
                sidecar = await SidecarFolder(client: client, logger: logger).read(
                    forFileAt: item.path, fileID: remote.fileid
                ).sidecar
            }
            let established = try store.establishedProvenance(
                path: path, fileid: remote.fileid, etag: remote.etag)
            let chosen: (keys: SwarmKeys, basis: Basis)
            let validity = sidecar?.validity(for: remote)
            if let sidecar, let validity, validity != .stale {
                guard sidecar.root == outcome.root else {
                    skipMismatch(
                        relative: relative, mtime: mtime, etag: remote.etag,
                        reason: established == nil
                            ? "it differs from the bytes its sidecar describes (edited locally?)"
                            : "its sidecar names other bytes than the server's file, which this copy has; a reader's "
                                + "get notices and replaces it")
                    await stop(relative)
                    return
                }
                if validity == .needsSpotCheck {
                    // The etag moved without the size or mtime (a lock): compare samples before vouching again.
                    if established == nil {
                        let check = try await comparison(item.path, remote).check(localPath: path, depth: .sample)
                        guard check.matches else {
                            skipMismatch(
                                relative: relative, mtime: mtime, etag: remote.etag,
                                reason: "it differs from the server's file")
                            await stop(relative)
                            return
                        }
                    }
                    if await mayPublish(nextTo: item.path) {
                        try await publisher.publish(
                            .version(remote), root: outcome.root, chunking: outcome.parameters,
                            salt: sidecar.saltBytes, manifest: nil, nextTo: item.path)
                    }
                }
                chosen = (sidecar.swarmKeys, .sidecar)
            } else {
                // No usable sidecar: publish one, but only for bytes established from the server.
                guard
                    let basis = try await establish(
                        relative: relative, path: path, item: item, remote: remote, root: outcome.root, mtime: mtime,
                        recorded: established)
                else { return }
                guard await mayPublish(nextTo: item.path) else {
                    report(.skipped(path: relative, why: .cannotPublish))
                    return
                }
                let published = try await publisher.publish(
                    .version(remote), root: outcome.root, chunking: outcome.parameters, salt: Sidecar.randomSalt(),
                    manifest: manifest, nextTo: item.path)
                chosen = (published.swarmKeys, basis)
            }
            if let old = seeded[relative] {
                guard old.keys.swarmID != chosen.keys.swarmID else {
                    // The same swarm (the sidecar was rewritten for the same bytes): it goes on as it is.
                    seeded[relative] = Seeded(
                        root: outcome.root, keys: chosen.keys, size: outcome.size, mtime: mtime, etag: remote.etag,
                        sidecarETag: sidecarTag)
                    return
                }
                await node.close(old.keys)
            }
            // This device has the file from outside the swarm: it is an origin and super-seeds what the swarm lacks.
            var options = baseOptions
            options.superSeed = true
            let swarm = try await node.open(
                root: outcome.root, keys: chosen.keys, chunking: outcome.parameters, expectedSize: outcome.size,
                options: options, awaitJoin: false)
            try await swarm.seed(manifest: manifest, store: store)
            seeded[relative] = Seeded(
                root: outcome.root, keys: chosen.keys, size: outcome.size, mtime: mtime, etag: remote.etag,
                sidecarETag: sidecarTag)
            mismatched[relative] = nil
            report(.seeding(path: relative, swarmID: chosen.keys.swarmID, size: outcome.size, basis: chosen.basis))
        } catch {
            report(.error(path: relative, message: "\(error)"))
        }
    }

    /// A small file: established as the server's version (from the store's provenance, else compared whole with the
    /// server, which costs one GET), it joins the folder's bundle at the end of the scan.
    private func considerForBundle(
        relative: String, path: String, item: DAVItem, remote: RemoteVersion, root: Hash256, mtime: Date
    ) async throws {
        let recorded = try store.establishedProvenance(path: path, fileid: remote.fileid, etag: remote.etag)
        guard
            let basis = try await establish(
                relative: relative, path: path, item: item, remote: remote, root: root, mtime: mtime,
                recorded: recorded)
        else {
            bundleFiles[relative] = nil
            return
        }
        // A file that was larger at an earlier scan had a swarm of its own.
        await stop(relative)
        mismatched[relative] = nil
        bundleFiles[relative] = (
            FolderSidecar.Entry(
                path: relative, fileid: remote.fileid, etag: remote.etag, size: remote.size, mtime: remote.mtime,
                root: root),
            basis, mtime
        )
    }

    /// How the local file is known to be the server's version: from the store's provenance record (`recorded`), else
    /// by comparing every byte with the server, which is then recorded. Nil when the file differs: it is reported as
    /// skipped and any swarm of it stopped.
    private func establish(
        relative: String, path: String, item: DAVItem, remote: RemoteVersion, root: Hash256, mtime: Date,
        recorded: Provenance?
    ) async throws -> Basis? {
        if let recorded { return Basis(rawValue: recorded.source.rawValue) ?? .download }
        let check = try await comparison(item.path, remote).check(localPath: path, depth: .everyByte)
        guard check.matches else {
            skipMismatch(
                relative: relative, mtime: mtime, etag: remote.etag, reason: "it differs from the server's file")
            await stop(relative)
            return nil
        }
        try store.recordProvenance(path: path, root: root, server: remote, source: .comparison)
        return .comparison
    }

    /// Keeps the folder's bundle in step with the small files found (`FolderBundlePublisher`): the published bundle is
    /// kept while it lists exactly the current small files this device and other writers hold; otherwise a bundle of
    /// all of them is published (new σ). This device serves the whole bundle when it holds every file, else its part:
    /// two seeders with different files converge on one bundle that both serve, instead of overwriting each other's.
    private func refreshBundle(listedTag: String?, remoteItems: [String: DAVItem]) async {
        let wanted = bundleFiles.values.map(\.entry).sorted { $0.path < $1.path }
        // Nothing changed since the last refresh (served then, or refused: a refusal is reported once, not at every
        // scan).
        if bundleHeld == wanted, listedTag == bundleSidecarTag { return }
        guard !wanted.isEmpty else {
            await closeBundle()
            bundleHeld = []
            return
        }
        do {
            let publisher = FolderBundlePublisher(client: client, store: store, identity: identity, logger: logger)
            guard let published = try await publisher.publish(folder: remoteRoot, held: wanted, listing: remoteItems)
            else {
                await closeBundle()
                for entry in wanted { report(.skipped(path: entry.path, why: .cannotPublish)) }
                bundleHeld = wanted
                bundleSidecarTag = listedTag
                return
            }
            // A bundle written now changes the listed tag: the next scan reads it once more and keeps it.
            bundleSidecarTag = published.written ? nil : listedTag
            bundleHeld = wanted
            let keys = published.sidecar.swarmKeys
            if let bundle, bundle.keys.swarmID == keys.swarmID {
                try await bundle.swarm.seed(manifest: published.manifest, store: store, holding: published.holding)
                self.bundle = (published.sidecar, keys, bundle.swarm)
                return
            }
            await closeBundle()
            let swarm = try await publisher.serve(published, node: node, baseOptions: baseOptions)
            bundle = (published.sidecar, keys, swarm)
            let held = Dictionary(uniqueKeysWithValues: wanted.map { ($0.path, $0) })
            for entry in published.sidecar.files where held[entry.path] == entry {
                report(
                    .seeding(
                        path: entry.path, swarmID: keys.swarmID, size: entry.size,
                        basis: bundleFiles[entry.path]?.basis ?? .sidecar))
            }
        } catch {
            report(.error(path: nil, message: "the folder's bundle of small files: \(error)"))
        }
    }

    private func closeBundle() async {
        guard let bundle else { return }
        await node.close(bundle.keys)
        self.bundle = nil
    }

    /// `SidecarPublisher.mayPublish`, asked once per folder and scan.
    private func mayPublish(nextTo path: String) async -> Bool {
        let folder = SidecarFolder.parent(of: path)
        if let known = publishableFolders[folder] { return known }
        let may = await publisher.mayPublish(nextTo: path)
        publishableFolders[folder] = may
        return may
    }

    private func comparison(_ remotePath: String, _ remote: RemoteVersion) -> ServerComparison {
        ServerComparison(client: client, remotePath: remotePath, etag: remote.etag, size: remote.size)
    }

    private func skipMismatch(relative: String, mtime: Date, etag: String, reason: String) {
        mismatched[relative] = (mtime, etag)
        report(.skipped(path: relative, why: .mismatch(reason)))
    }

    private func stop(_ relative: String) async {
        guard let entry = seeded.removeValue(forKey: relative) else { return }
        await node.close(entry.keys)
    }
}
