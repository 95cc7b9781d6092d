import ChunkStore
import Foundation
import Logging
import NextcloudClient
import SwarmKit

/// The files of one folder being seeded, kept in step with the disk and the server at each scan.
///
/// A file is offered to its version's swarm only when this device can stand for the server's bytes (DESIGN §4,
/// "Provenance"): a valid sidecar names the same content root, or the file is unchanged since this device downloaded
/// or uploaded that server version, or every byte was compared with the server's. A valid sidecar that names another
/// root means this copy differs: it is reported and never replaced. Each scan also re-checks access: a file that gained
/// its own ACL rules stops being seeded and its sidecar is deleted.
actor FolderSeeder {
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
    enum Basis: String {
        case sidecar, download, upload, comparison
    }

    let client: NextcloudClient
    let store: ChunkStore
    let node: SwarmNode
    let identity: DeviceIdentity
    let localRoot: String
    let remoteRoot: String
    let baseOptions: Swarm.Options
    let json: Bool
    let quiet: Bool
    let logger: Logger
    private var seeded: [String: Seeded] = [:]
    /// Files found not to match the server, by their local mtime and the server's etag (not retried until one
    /// changes).
    private var mismatched: [String: (mtime: Date, etag: String)] = [:]
    /// Files skipped for their own access rules (reported once).
    private var ownRules: Set<String> = []

    init(
        client: NextcloudClient, store: ChunkStore, node: SwarmNode, identity: DeviceIdentity, localRoot: String,
        remoteRoot: String, baseOptions: Swarm.Options, json: Bool, quiet: Bool, logger: Logger
    ) {
        self.client = client
        self.store = store
        self.node = node
        self.identity = identity
        self.localRoot = localRoot
        self.remoteRoot = remoteRoot
        self.baseOptions = baseOptions
        self.json = json
        self.quiet = quiet
        self.logger = logger
    }

    /// The files seeded now, by path relative to the folder.
    var seededFiles: [String] { seeded.keys.sorted() }

    /// One pass: walk the server folder, match local files, start seeding new and changed ones, stop removed ones and
    /// ones that gained their own access rules.
    func scan() async {
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
            report(
                ["event": "error", "message": "cannot list \(remoteRoot): \(error)"],
                text: "harp-cli: cannot list \(remoteRoot): \(error)")
            return
        }
        var present = Set<String>()
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
            if let memo = mismatched[relative], memo.mtime == mtime, memo.etag == etag { continue }
            await seedFile(relative: relative, path: path, item: item, mtime: mtime, sidecarTag: sidecarTag)
        }
        for (relative, entry) in seeded where !present.contains(relative) {
            await node.close(entry.keys)
            seeded[relative] = nil
            report(["event": "unseeded", "path": relative], text: "stopped seeding \(relative)")
        }
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
            report(
                [
                    "event": "unseeded", "path": relative, "reason": "the file gained its own access rules",
                    "sidecarDeleted": deleted,
                ],
                text: "stopped seeding \(relative): it gained its own access rules"
                    + (deleted ? " (sidecar deleted)" : " (its sidecar could not be deleted)"))
        } else if !ownRules.contains(relative) {
            if let fileID = item.fileID {
                _ = await sidecars.remove(forFileAt: item.path, fileID: String(fileID))
            }
            report(
                ["event": "skipped", "path": relative, "reason": "the file has its own access rules"],
                text: "not seeding \(relative): it has its own access rules (server only)")
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
            let sidecars = SidecarFolder(client: client, logger: logger)
            let (sidecar, _) = await sidecars.read(forFileAt: item.path, fileID: remote.fileid)
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
                        var generator = SystemRandomNumberGenerator()
                        let check = try await comparison(item.path, remote).sample(
                            localPath: path, using: &generator)
                        guard check.matches else {
                            skipMismatch(
                                relative: relative, mtime: mtime, etag: remote.etag,
                                reason: "it differs from the server's file")
                            await stop(relative)
                            return
                        }
                    }
                    if await sidecars.mayPublish(nextTo: item.path) {
                        try await sidecars.publish(
                            makeSidecar(remote, item: item, outcome: outcome, salt: sidecar.saltBytes),
                            nextTo: item.path)
                    }
                }
                chosen = (sidecar.swarmKeys, .sidecar)
            } else {
                // No usable sidecar: publish one, but only for bytes established from the server.
                var basis = established.map { Basis(rawValue: $0.source.rawValue) ?? .download }
                if basis == nil {
                    let check = try await comparison(item.path, remote).compareEveryByte(localPath: path)
                    guard check.matches else {
                        skipMismatch(
                            relative: relative, mtime: mtime, etag: remote.etag,
                            reason: "it differs from the server's file")
                        await stop(relative)
                        return
                    }
                    try store.recordProvenance(
                        path: path, root: outcome.root, server: remote, source: .comparison)
                    basis = .comparison
                }
                guard await sidecars.mayPublish(nextTo: item.path) else {
                    report(
                        [
                            "event": "skipped", "path": relative,
                            "reason": "no sidecar and no write access to publish one",
                        ],
                        text: "not seeding \(relative): no sidecar, and no write access to publish one")
                    return
                }
                let published = makeSidecar(remote, item: item, outcome: outcome, salt: Sidecar.randomSalt())
                try await sidecars.publishManifest(manifest, for: published, nextTo: item.path)
                try await sidecars.publish(published, nextTo: item.path)
                chosen = (published.swarmKeys, basis ?? .comparison)
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
                options: options)
            try await swarm.seed(manifest: manifest, store: store)
            seeded[relative] = Seeded(
                root: outcome.root, keys: chosen.keys, size: outcome.size, mtime: mtime, etag: remote.etag,
                sidecarETag: sidecarTag)
            mismatched[relative] = nil
            report(
                [
                    "event": "seeding", "path": relative, "swarm": chosen.keys.swarmID.hexString,
                    "size": outcome.size, "basis": chosen.basis.rawValue,
                ],
                text: "seeding \(relative) (\(formatBytes(outcome.size)))")
        } catch {
            report(
                ["event": "error", "path": relative, "message": "\(error)"], text: "harp-cli: \(relative): \(error)")
        }
    }

    private func comparison(_ remotePath: String, _ remote: RemoteVersion) -> ServerComparison {
        ServerComparison(client: client, remotePath: remotePath, etag: remote.etag, size: remote.size)
    }

    private func makeSidecar(_ remote: RemoteVersion, item: DAVItem, outcome: IndexOutcome, salt: [UInt8]) -> Sidecar {
        Sidecar(
            fileid: remote.fileid, etag: remote.etag, name: SidecarFolder.name(of: item.path), size: remote.size,
            mtime: remote.mtime, chunking: outcome.parameters, root: outcome.root, salt: salt, pending: false,
            writerKey: identity.publicKey, sign: identity.sign)
    }

    private func skipMismatch(relative: String, mtime: Date, etag: String, reason: String) {
        mismatched[relative] = (mtime, etag)
        report(
            ["event": "skipped", "path": relative, "reason": reason], text: "not seeding \(relative): \(reason)")
    }

    private func stop(_ relative: String) async {
        guard let entry = seeded.removeValue(forKey: relative) else { return }
        await node.close(entry.keys)
    }

    private func report(_ object: [String: Any], text: String) {
        if json {
            printJSONLine(object)
        } else if object["event"] as? String == "error" {
            printError(text)
        } else if !quiet {
            print(text)
        }
    }
}
