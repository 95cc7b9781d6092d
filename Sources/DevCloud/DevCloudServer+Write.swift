import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension DevCloudServer {
    var tmpRoot: URL {
        URL(fileURLWithPath: configuration.dataDirectory).appendingPathComponent("tmp", isDirectory: true)
    }

    /// Streams a request body to a new temporary file; stops with 507 once `limit` bytes would be exceeded.
    func receiveBody(_ request: Request, limit: Int64?, quotaMessage: String) async throws -> (URL, Int64) {
        try FileManager.default.createDirectory(at: tmpRoot, withIntermediateDirectories: true)
        let url = tmpRoot.appendingPathComponent(UUID().uuidString)
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw DAVError(500, "Sabre\\DAV\\Exception", "Cannot create a temporary file")
        }
        let handle = try FileHandle(forWritingTo: url)
        var total: Int64 = 0
        do {
            for try await part in request.body {
                total += Int64(part.readableBytes)
                if let limit, total > limit { throw DAVError.insufficientStorage(quotaMessage) }
                let data = Data(part.readableBytesView)
                try await BlockingIO.run { try handle.write(contentsOf: data) }
            }
            try handle.close()
            // A client that went away mid-body must not leave a truncated file behind.
            if let declared = request.headers[.contentLength].flatMap(Int64.init), declared != total {
                throw DAVError.badRequest("Expected \(declared) bytes but received \(total)")
            }
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(at: url)
            throw error
        }
        return (url, total)
    }

    /// The parent folder of a target must exist (409 otherwise).
    func parentItem(_ target: DAVTarget) throws -> Item {
        var parent = target
        parent.location = try resolve(viewer: target.user, viewPath: target.location.parentViewPath)
        guard let item = try item(parent.location), item.isFolder else {
            throw DAVError.conflict("Parent node does not exist")
        }
        return item
    }

    /// Write checks for a share: `bit` must be granted (403 otherwise, as 038–040).
    func requirePermission(_ location: Location, _ bit: Int) throws {
        if let share = location.share, bit != 0, share.permissions & bit == 0 { throw DAVError.forbidden() }
    }

    func mtimeHeader(_ request: Request) -> Int64? {
        request.headers[.ocMTime].flatMap { Int64($0.trimmingCharacters(in: .whitespaces)) }
    }

    /// Replaces (or creates) the file at `location` with `source`, keeping the previous content as a version.
    /// Returns the new record and whether the file existed before.
    func installFile(
        from source: URL, at location: Location, mtime: Int64, checksum: String?, author: String
    ) throws -> (NodeRecord, Bool) {
        try writeLock.withLock { _ in
            try installFileLocked(from: source, at: location, mtime: mtime, checksum: checksum, author: author)
        }
    }

    private func installFileLocked(
        from source: URL, at location: Location, mtime: Int64, checksum: String?, author: String
    ) throws -> (NodeRecord, Bool) {
        let destination = diskURL(owner: location.owner, path: location.ownerPath)
        var existed = false
        if let old = try item(location), !old.isFolder {
            existed = true
            let folder = versionsRoot.appendingPathComponent(String(old.fileid), isDirectory: true)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let kept = folder.appendingPathComponent(String(old.record.mtime))
            try? FileManager.default.removeItem(at: kept)
            try FileManager.default.moveItem(at: destination, to: kept)
            try store.addVersion(
                VersionRecord(
                    fileid: old.fileid, mtime: old.record.mtime, size: old.size,
                    author: old.record.author ?? location.owner))
        }
        try? FileManager.default.removeItem(at: destination)
        try FileManager.default.moveItem(at: source, to: destination)
        try? FileManager.default.setAttributes(
            [.modificationDate: Date(timeIntervalSince1970: TimeInterval(mtime))], ofItemAtPath: destination.path)
        let record = try store.fileChanged(
            owner: location.owner, path: location.ownerPath, mtime: mtime, checksum: checksum, author: author)
        return (record, existed)
    }

    func writeHeaders(_ record: NodeRecord, owner: String, mtimeAccepted: Bool) -> HTTPFields {
        var headers: HTTPFields = [:]
        if mtimeAccepted { headers.append(HTTPField(name: .ocMTime, value: "accepted")) }
        headers.append(
            contentsOf: [
                .ocFileId: ocID(record.id ?? 0), .eTag: "\"\(record.etag)\"", .ocETag: "\"\(record.etag)\"",
                .ncOwnerId: owner, .ncPermissions: "RGDNVW",
            ] as HTTPFields)
        return headers
    }

    // MARK: PUT

    func put(_ request: Request, target: DAVTarget) async throws -> Response {
        let location = target.location
        guard !location.viewPath.isEmpty else { throw DAVError.forbidden("Cannot PUT to the root") }
        let existing = try item(location)
        if let existing {
            if existing.isFolder {
                throw DAVError(409, "Sabre\\DAV\\Exception\\Conflict", "Cannot PUT to a collection")
            }
            try requirePermission(location, 2)
            try checkLock(existing, user: target.user, request: request, hrefBase: target.hrefBase)
        } else {
            _ = try parentItem(target)
            try requirePermission(location, location.isMountRoot ? 2 : 4)
        }
        let free = try freeBytes(user: location.owner)
        let message = "Insufficient space in /\(location.viewPath)"
        if let free, let declared = request.headers[.contentLength].flatMap(Int64.init), declared > free {
            throw DAVError.insufficientStorage(message)
        }
        let (temp, _) = try await receiveBody(request, limit: free, quotaMessage: message)
        let mtime = mtimeHeader(request)
        let checksum = request.headers[.ocChecksum]
        let (record, existed): (NodeRecord, Bool)
        do {
            (record, existed) = try installFile(
                from: temp, at: location, mtime: mtime ?? Int64(Date().timeIntervalSince1970), checksum: checksum,
                author: target.user)
        } catch {
            try? FileManager.default.removeItem(at: temp)
            throw error
        }
        logger.debug("devcloud.put", metadata: ["user": "\(target.user)", "path": "\(location.viewPath)"])
        return HTTP.empty(
            existed ? 204 : 201, headers: writeHeaders(record, owner: location.owner, mtimeAccepted: mtime != nil))
    }

    // MARK: MKCOL

    func mkcol(target: DAVTarget) throws -> Response {
        let location = target.location
        if try item(location) != nil {
            throw DAVError(
                405, "Sabre\\DAV\\Exception\\MethodNotAllowed", "The resource you tried to create already exists",
                headers: [.allow: Self.allowHeader])
        }
        _ = try parentItem(target)
        try requirePermission(location, 4)
        try FileManager.default.createDirectory(
            at: diskURL(owner: location.owner, path: location.ownerPath), withIntermediateDirectories: false)
        let record = try store.folderCreated(
            owner: location.owner, path: location.ownerPath, mtime: Int64(Date().timeIntervalSince1970))
        return HTTP.empty(201, headers: [.ocFileId: ocID(record.id ?? 0)])
    }

    // MARK: DELETE

    func delete(_ request: Request, target: DAVTarget) throws -> Response {
        let item = try existingItem(target)
        let location = target.location
        guard !location.viewPath.isEmpty else { throw DAVError.forbidden("Cannot delete the root") }
        if location.isMountRoot, let share = location.share {
            _ = try store.deleteShare(id: share.id ?? 0)  // the recipient unshares it from his tree
            return HTTP.empty(204)
        }
        try requirePermission(location, 8)
        if !item.isFolder { try checkLock(item, user: target.user, request: request, hrefBase: target.hrefBase) }
        try FileManager.default.removeItem(at: diskURL(owner: location.owner, path: location.ownerPath))
        for fileid in try store.deleteNodes(owner: location.owner, path: location.ownerPath) {
            try? FileManager.default.removeItem(at: versionsRoot.appendingPathComponent(String(fileid)))
        }
        return HTTP.empty(204)
    }

    // MARK: MOVE / COPY

    /// The files-namespace path of a `Destination` header (absolute URL or absolute path).
    func destinationPath(_ request: Request) throws -> String {
        guard var destination = request.headers[.destination] else {
            throw DAVError.badRequest("The destination header was not supplied")
        }
        if let schemeEnd = destination.range(of: "://") {
            let afterScheme = destination[schemeEnd.upperBound...]
            destination = afterScheme.firstIndex(of: "/").map { String(afterScheme[$0...]) } ?? "/"
        }
        if let query = destination.firstIndex(of: "?") { destination = String(destination[..<query]) }
        return destination.removingPercentEncoding ?? destination
    }

    func moveOrCopy(_ request: Request, target: DAVTarget, isMove: Bool) throws -> Response {
        let source = try existingItem(target)
        let destination = try davTarget(path: try destinationPath(request), user: target.user)
        guard !destination.location.viewPath.isEmpty, !target.location.viewPath.isEmpty else {
            throw DAVError.forbidden("Cannot move or copy the root")
        }
        if destination.location.owner == source.location.owner,
            destination.location.ownerPath == source.location.ownerPath
                || destination.location.ownerPath.hasPrefix(source.location.ownerPath + "/")
        {
            throw DAVError.forbidden("Source and destination overlap")
        }
        let overwrite = (request.headers[.overwrite] ?? "T").uppercased() != "F"
        let existing = try item(destination.location)
        if existing != nil && !overwrite {
            throw DAVError.preconditionFailed(
                "The destination node already exists, and the overwrite header is set to false", header: "Overwrite")
        }
        _ = try parentItem(destination)
        if isMove {
            // Renaming a share's mount point is not supported: it would move the owner's folder.
            if target.location.isMountRoot { throw DAVError.forbidden("DevCloud cannot rename a share's mount point") }
            try requirePermission(target.location, 8)
            if !source.isFolder {
                try checkLock(source, user: target.user, request: request, hrefBase: target.hrefBase)
            }
        }
        try requirePermission(destination.location, existing == nil ? 4 : 2)
        if let existing, !existing.isFolder {
            try checkLock(existing, user: target.user, request: request, hrefBase: destination.hrefBase)
        }
        let from = diskURL(owner: source.location.owner, path: source.location.ownerPath)
        let to = diskURL(owner: destination.location.owner, path: destination.location.ownerPath)
        if existing != nil {
            try FileManager.default.removeItem(at: to)
            _ = try store.deleteNodes(owner: destination.location.owner, path: destination.location.ownerPath)
        }
        var headers: HTTPFields = [:]
        if isMove {
            try FileManager.default.moveItem(at: from, to: to)
            try store.moveNodes(
                fromOwner: source.location.owner, fromPath: source.location.ownerPath,
                toOwner: destination.location.owner, toPath: destination.location.ownerPath)
            if let moved = try item(destination.location), !moved.isFolder {
                headers = [
                    .ocETag: "\"\(moved.record.etag)\"", .eTag: "\"\(moved.record.etag)\"",
                    .ocFileId: ocID(moved.fileid),
                ]
            }
        } else {
            try FileManager.default.copyItem(at: from, to: to)
            if !source.isFolder {
                let record = try store.fileChanged(
                    owner: destination.location.owner, path: destination.location.ownerPath, mtime: source.record.mtime,
                    checksum: source.record.checksum, author: target.user)
                headers = [.ocFileId: ocID(record.id ?? 0)]
            } else {
                try store.folderCreated(
                    owner: destination.location.owner, path: destination.location.ownerPath,
                    mtime: Int64(Date().timeIntervalSince1970))
            }
        }
        return HTTP.empty(existing == nil ? 201 : 204, headers: headers)
    }
}
