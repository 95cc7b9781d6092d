public import ChunkStore
internal import Foundation
public import Logging
public import NextcloudClient
public import SwarmKit
internal import Synchronization

/// Reading and publishing the `.harp/` sidecars next to files on the server (docs/engine.md, "Sidecars").
public struct SidecarFolder: Sendable {
    let client: NextcloudClient
    let logger: Logger
    /// `.harp/` folders known to exist (shared by the copies of one publisher): publishing many files of one folder
    /// creates it once, not twice per file.
    let known: KnownFolders?

    /// The `.harp/` folders of `client`'s server; `logger` gets the sidecars that do not verify.
    public init(client: NextcloudClient, logger: Logger, remembering known: KnownFolders? = nil) {
        self.client = client
        self.logger = logger
        self.known = known
    }

    /// Folders found or made on the server, remembered across publishes (a lock; publishes run concurrently).
    public final class KnownFolders: Sendable {
        private let folders = Mutex<Set<String>>([])

        public init() {}

        func contains(_ folder: String) -> Bool { folders.withLock { $0.contains(folder) } }
        func insert(_ folder: String) { _ = folders.withLock { $0.insert(folder) } }
        func remove(_ folder: String) { _ = folders.withLock { $0.remove(folder) } }
    }

    /// `/a/b/file.mov` → `/a/b`.
    public static func parent(of path: String) -> String {
        let trimmed = path.hasSuffix("/") ? String(path.dropLast()) : path
        guard let slash = trimmed.lastIndex(of: "/") else { return "/" }
        let parent = String(trimmed[..<slash])
        return parent.isEmpty ? "/" : parent
    }

    public static func name(of path: String) -> String {
        let trimmed = path.hasSuffix("/") ? String(path.dropLast()) : path
        return trimmed.split(separator: "/").last.map(String.init) ?? trimmed
    }

    public static func folder(for path: String) -> String {
        let parent = parent(of: path)
        return (parent == "/" ? "" : parent) + "/" + Sidecar.folderName
    }

    /// The sidecar of the file at `path` (by its fileid), or nil when there is none, it cannot be read (a single-file
    /// share cannot see the folder), or it does not verify.
    public func read(forFileAt path: String, fileID: String) async -> (sidecar: Sidecar?, note: String?) {
        await read(at: Self.folder(for: path) + "/\(fileID).harp")
    }

    /// The pending sidecar of an upload in progress named `name` in the folder of `path`.
    public func readPending(forFileAt path: String) async -> Sidecar? {
        await read(at: Self.folder(for: path) + "/pending-\(Self.name(of: path)).harp").sidecar
    }

    private func read(at sidecarPath: String) async -> (sidecar: Sidecar?, note: String?) {
        do {
            let (data, _) = try await client.data(at: sidecarPath, limit: 16 * 1024)
            do {
                return (try Sidecar(json: Array(data)), nil)
            } catch .outdated(let format) {
                return (
                    nil,
                    "the sidecar is of an older harp (\(format), no swarm salt): ignored, and replaced when "
                        + "this device has the server's bytes and may write the folder"
                )
            } catch {
                logger.warning(
                    "ignoring a sidecar that does not verify",
                    metadata: ["path": "\(sidecarPath)", "error": "\(error)"])
                return (nil, "the sidecar does not verify (\(error))")
            }
        } catch let error as NextcloudError where error.kind == .notFoundOrNoAccess || error.kind == .forbidden {
            return (nil, nil)
        } catch {
            return (nil, "the sidecar could not be read (\(error))")
        }
    }

    /// Where the folder sidecar of the server folder `folder` lives: `folder/.harp/folder.harp`.
    public static func folderSidecarPath(of folder: String) -> String {
        (folder == "/" ? "" : folder) + "/" + Sidecar.folderName + "/" + FolderSidecar.fileName
    }

    /// The folder sidecar of the server folder `folder` (its bundle of small files), or nil with a note when there is
    /// none usable. It is read with a limit of `FolderSidecar.maxEncodedSize` and checked before use.
    public func readFolderSidecar(of folder: String) async -> (sidecar: FolderSidecar?, note: String?) {
        let path = Self.folderSidecarPath(of: folder)
        do {
            let (data, _) = try await client.data(at: path, limit: FolderSidecar.maxEncodedSize)
            do {
                return (try FolderSidecar(json: Array(data)), nil)
            } catch {
                logger.warning(
                    "ignoring a folder sidecar that does not verify",
                    metadata: ["path": "\(path)", "error": "\(error)"])
                return (nil, "the folder's bundle sidecar does not verify (\(error))")
            }
        } catch let error as NextcloudError where error.kind == .notFoundOrNoAccess || error.kind == .forbidden {
            return (nil, nil)
        } catch {
            return (nil, "the folder's bundle sidecar could not be read (\(error))")
        }
    }

    /// Writes the bundle's manifest (`.harp/folder.hrpm`), then the folder sidecar of the server folder `folder`, into
    /// its `.harp/`: a fetcher that finds the sidecar can start from the manifest (with the server as web seed) when no
    /// peer is there, instead of waiting for one.
    public func publishFolderSidecar(_ sidecar: FolderSidecar, manifest: Manifest, of folder: String) async throws {
        let path = Self.folderSidecarPath(of: folder)
        let parent = Self.parent(of: path)
        try await upload(Data(manifest.encoded()), to: Self.folderManifestPath(of: folder), in: parent)
        try await upload(Data(sidecar.encoded()), to: path, in: parent)
    }

    static func folderManifestPath(of folder: String) -> String {
        String(folderSidecarPath(of: folder).dropLast(".harp".count)) + ".hrpm"
    }

    /// The bundle manifest published next to `sidecar`, if it verifies against the bundle's root; read with a limit
    /// from the number of chunks the bundle's size and file count allow (36 bytes a chunk).
    public func readFolderManifest(for sidecar: FolderSidecar, of folder: String) async -> Manifest? {
        let chunks = sidecar.size / Int64(max(sidecar.chunking.minSize, 64)) + Int64(sidecar.files.count) + 1
        let limit = Int(min(4096 + chunks * 36, 64 << 20))
        guard let (data, _) = try? await client.data(at: Self.folderManifestPath(of: folder), limit: limit),
            let manifest = try? Manifest(encoded: Array(data)), (try? manifest.verify(root: sidecar.root)) != nil,
            manifest.parameters == sidecar.chunking, manifest.size == sidecar.size
        else { return nil }
        return manifest
    }

    /// Whether the user may create files in the folder of `path` (the sidecar goes into its `.harp/`).
    public func mayPublish(nextTo path: String) async -> Bool {
        guard let folder = try? await client.item(at: Self.parent(of: path)) else { return false }
        if folder.hasACLList { return false }
        return folder.permissions?.contains(.createFile) ?? false || folder.permissions?.contains(.write) ?? false
    }

    /// Writes `sidecar` into the `.harp/` folder next to `path`, creating the folder when needed.
    public func publish(_ sidecar: Sidecar, nextTo path: String) async throws {
        let folder = Self.folder(for: path)
        try await upload(Data(sidecar.encoded()), to: folder + "/" + sidecar.fileName, in: folder)
    }

    /// Uploads into `folder`, making it first unless it is known to exist; a known folder that has gone since (the
    /// PUT's parent is missing) is made again, once.
    private func upload(_ data: Data, to path: String, in folder: String) async throws {
        let wasKnown = known?.contains(folder) ?? false
        if !wasKnown {
            try await ensureFolder(folder)
            known?.insert(folder)
        }
        do {
            _ = try await client.upload(data, to: path)
        } catch let error as NextcloudError
            where wasKnown && (error.kind == .conflict || error.kind == .notFoundOrNoAccess)
        {
            known?.remove(folder)
            try await ensureFolder(folder)
            known?.insert(folder)
            _ = try await client.upload(data, to: path)
        }
    }

    /// Publishes the manifest of the version next to its sidecar (`.harp/<fileid>.hrpm`, or
    /// `.harp/pending-<name>.hrpm`), so a fetcher can start when no peer is there to give it; it is verified against
    /// R before use like a manifest from a peer. It is about 40 bytes per chunk (20 KiB per 512 MiB).
    public func publishManifest(_ manifest: Manifest, for sidecar: Sidecar, nextTo path: String) async throws {
        let name = String(sidecar.fileName.dropLast(".harp".count)) + ".hrpm"
        let folder = Self.folder(for: path)
        try await upload(Data(manifest.encoded()), to: folder + "/" + name, in: folder)
    }

    /// The manifest published for `sidecar`, if there is one that verifies against its content root. `size` is the
    /// file's size as the server reports it (a pending upload's sidecar is all there is to go by): the download limit
    /// comes from it and the smallest chunk the sidecar's parameters allow (36 bytes a chunk), and never passes
    /// 64 MiB, whatever the sidecar says; a larger manifest comes from peers, page by page.
    public func readManifest(for sidecar: Sidecar, size: Int64, nextTo path: String) async -> Manifest? {
        let name = String(sidecar.fileName.dropLast(".harp".count)) + ".hrpm"
        let chunks = size / Int64(max(sidecar.chunking.minSize, 64)) + 2
        let limit = Int(min(4096 + chunks * 36, 64 << 20))
        guard let (data, _) = try? await client.data(at: Self.folder(for: path) + "/" + name, limit: limit),
            let manifest = try? Manifest(encoded: Array(data))
        else { return nil }
        do {
            try manifest.verify(root: sidecar.root)
        } catch {
            logger.warning(
                "ignoring a published manifest that does not match the sidecar", metadata: ["path": "\(path)"])
            return nil
        }
        guard manifest.size == size, manifest.size == sidecar.size, manifest.parameters == sidecar.chunking else {
            return nil
        }
        return manifest
    }

    /// Creates `folder` unless it exists (MKCOL answers 405 then, reported as a conflict).
    public func ensureFolder(_ folder: String) async throws {
        do {
            try await client.makeFolder(folder)
        } catch let error as NextcloudError where error.kind == .conflict {
            guard (try? await client.item(at: folder))?.isFolder == true else { throw error }
        }
    }

    /// Creates every missing folder on the way to `folder`.
    public func ensureFolders(_ folder: String) async throws {
        var current = ""
        for part in folder.split(separator: "/") {
            current += "/" + part
            if (try? await client.item(at: current))?.isFolder == true { continue }
            try await ensureFolder(current)
        }
    }

    /// Deletes the sidecar and manifest of the file at `path` (it gained its own access rules); true when the sidecar
    /// is gone afterwards (deleted now, or there was none).
    public func remove(forFileAt path: String, fileID: String) async -> Bool {
        let base = Self.folder(for: path) + "/\(fileID)"
        try? await client.delete(base + ".hrpm")
        do {
            try await client.delete(base + ".harp")
            return true
        } catch let error as NextcloudError where error.kind == .notFoundOrNoAccess {
            return (try? await client.item(at: base + ".harp")) == nil
        } catch {
            logger.warning("could not delete a sidecar", metadata: ["path": "\(base).harp", "error": "\(error)"])
            return false
        }
    }

    /// Removes a pending sidecar (after the upload it announced has ended).
    public func removePending(nextTo path: String) async {
        try? await client.delete(Self.folder(for: path) + "/pending-\(Self.name(of: path)).harp")
        try? await client.delete(Self.folder(for: path) + "/pending-\(Self.name(of: path)).hrpm")
    }
}

/// The Nextcloud server as the web seed of one file version: Range GETs with If-Match on the version's etag.
struct NextcloudWebSeed: WebSeed {
    let client: NextcloudClient
    let path: String
    let etag: String

    func fetch(offset: Int64, length: Int) async throws -> [UInt8] {
        guard let range = ByteRange(offset: offset, length: Int64(length)) else { return [] }
        do {
            let (data, _) = try await client.data(at: path, range: range, ifMatch: etag, limit: length)
            guard data.count == length else {
                throw NextcloudError(
                    .malformedResponse, path: path, detail: "short range: \(data.count) of \(length) bytes")
            }
            return Array(data)
        } catch let error as NextcloudError {
            switch error.kind {
            case .preconditionFailed: throw WebSeedError.changed
            case .badCredentials, .forbidden, .notFoundOrNoAccess, .throttled: throw WebSeedError.refused("\(error)")
            default: throw error
            }
        }
    }
}

extension DAVItem {
    /// What the server says about this file now, in the form sidecars are compared with.
    public var remoteVersion: RemoteVersion? {
        guard let fileID, let etag, let size else { return nil }
        return RemoteVersion(
            fileid: String(fileID), etag: etag, size: size, mtime: Int64(modified?.timeIntervalSince1970 ?? 0))
    }
}
