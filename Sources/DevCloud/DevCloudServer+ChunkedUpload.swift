import Foundation
import Hummingbird

/// Chunked upload v2 (049–056, 075–076): MKCOL an upload folder, PUT numbered chunks, PROPFIND to resume,
/// MOVE `.file` onto the destination.
extension DevCloudServer {
    func handleUpload(_ request: Request, user: String, path: String) async throws -> Response {
        let parts = path.split(separator: "/").map(String.init)
        guard let owner = parts.first, owner == user else {
            throw DAVError.notFound("File with name /\(parts.dropFirst().joined(separator: "/")) could not be located")
        }
        guard parts.count >= 2, parts.count <= 3, !parts[1].hasPrefix("."), parts[1] != ".." else {
            throw DAVError.notFound("File with name //\(parts.dropFirst().joined(separator: "/")) could not be located")
        }
        let id = parts[1]
        let folder = uploadsRoot.appendingPathComponent(user, isDirectory: true).appendingPathComponent(
            id, isDirectory: true)
        let chunk = parts.count == 3 ? parts[2] : nil
        let exists = FileManager.default.fileExists(atPath: folder.path)
        let notFound = DAVError.notFound("File with name //\(id)\(chunk.map { "/" + $0 } ?? "") could not be located")
        let method = request.method.rawValue
        switch (method, chunk) {
        case ("MKCOL", nil):
            if exists {
                throw DAVError(
                    405, "Sabre\\DAV\\Exception\\MethodNotAllowed", "The resource you tried to create already exists",
                    headers: [.allow: Self.allowHeader])
            }
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            return HTTP.empty(201)
        case ("PUT", .some(let name)):
            guard exists else { throw notFound }
            guard name != ".file", Int(name) != nil || !name.contains(".") else {
                throw DAVError.forbidden("Invalid chunk name")
            }
            var limit: Int64?
            var message = "Insufficient space"
            if request.headers[.destination] != nil {
                let target = try davTarget(path: try destinationPath(request), user: user)
                if let free = try freeBytes(user: target.location.owner) {
                    limit = free
                    message = "Insufficient space in /\(target.location.parentViewPath)"
                    let total = request.headers[.ocTotalLength].flatMap(Int64.init) ?? 0
                    if total > free { throw DAVError.insufficientStorage(message) }
                }
            }
            let (temp, _) = try await receiveBody(request, limit: limit, quotaMessage: message)
            let final = folder.appendingPathComponent(name)
            try? FileManager.default.removeItem(at: final)
            try FileManager.default.moveItem(at: temp, to: final)
            return HTTP.empty(201)
        case ("PROPFIND", _):
            guard exists else { throw notFound }
            return try await uploadPropfind(
                request, folder: folder, base: "/remote.php/dav/uploads/\(user)/\(id)", chunk: chunk)
        case ("MOVE", ".file"):
            guard exists else { throw notFound }
            return try await assemble(request, user: user, folder: folder)
        case ("DELETE", nil):
            guard exists else { throw notFound }
            try FileManager.default.removeItem(at: folder)
            return HTTP.empty(204)
        case ("DELETE", .some(let name)):
            let file = folder.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: file.path) else { throw notFound }
            try FileManager.default.removeItem(at: file)
            return HTTP.empty(204)
        default:
            throw DAVError(405, "Sabre\\DAV\\Exception\\MethodNotAllowed", "\(method) is not allowed here")
        }
    }

    func chunkNames(_ folder: URL) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted { (Int($0) ?? Int.max, $0) < (Int($1) ?? Int.max, $1) }
    }

    func uploadPropfind(_ request: Request, folder: URL, base: String, chunk: String?) async throws -> Response {
        let what = try PropfindRequest.parse(try await HTTP.collect(request))
        let depth = request.headers[.depth] ?? "1"
        struct Entry {
            var href: String
            var size: Int64?
            var mtime: Int64
            var etag: String?
        }
        func attributes(_ url: URL) -> (Int64, Int64) {
            let attributes = (try? FileManager.default.attributesOfItem(atPath: url.path)) ?? [:]
            let size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
            let mtime = Int64((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)
            return (size, mtime)
        }
        let chunks = chunkNames(folder)
        let (_, folderMtime) = attributes(folder)
        let total = chunks.reduce(Int64(0)) { $0 + attributes(folder.appendingPathComponent($1)).0 }
        var entries: [Entry] = []
        let fileEntry = Entry(href: base + "/.file", size: total, mtime: folderMtime, etag: ETag.short())
        if let chunk {
            if chunk == ".file" {
                entries = [fileEntry]
            } else {
                let url = folder.appendingPathComponent(chunk)
                guard FileManager.default.fileExists(atPath: url.path) else {
                    throw DAVError.notFound("File with name //\(chunk) could not be located")
                }
                let (size, mtime) = attributes(url)
                entries = [Entry(href: base + "/" + chunk, size: size, mtime: mtime, etag: ETag.file())]
            }
        } else {
            entries = [Entry(href: base + "/", size: nil, mtime: folderMtime, etag: nil)]
            if depth != "0" {
                entries.append(fileEntry)
                for name in chunks {
                    let (size, mtime) = attributes(folder.appendingPathComponent(name))
                    entries.append(Entry(href: base + "/" + name, size: size, mtime: mtime, etag: ETag.file()))
                }
            }
        }
        var xml = XML.multistatusOpen
        for entry in entries {
            let isFolder = entry.size == nil
            let names: [QName]
            switch what {
            case .allprop, .propname:
                names =
                    isFolder
                    ? [.dav("getlastmodified"), .dav("resourcetype")]
                    : [.dav("getlastmodified"), .dav("getcontentlength"), .dav("resourcetype"), .dav("getetag")]
            case .props(let requested): names = requested
            }
            var found: [String] = []
            var missing: [String] = []
            for name in names {
                let value: String?
                switch (name.namespace, name.name) {
                case (XML.dav, "getlastmodified"): value = HTTP.httpDate(entry.mtime)
                case (XML.dav, "resourcetype"): value = isFolder ? "<d:collection/>" : ""
                case (XML.dav, "getcontentlength"): value = entry.size.map(String.init)
                case (XML.dav, "getetag"): value = entry.etag.map { XML.escape("\"\($0)\"") }
                default: value = nil
                }
                if let value {
                    found.append(XML.element(name, inner: value.isEmpty ? nil : value))
                } else {
                    missing.append(XML.element(name, inner: nil))
                }
            }
            xml += Self.response(href: Self.encodeHref(entry.href), found: found, missing: missing)
        }
        return HTTP.xml(207, xml + "</d:multistatus>\n", headers: [.dav: Self.davHeader])
    }

    /// MOVE of `.file`: concatenates the chunks in numeric order into the destination.
    func assemble(_ request: Request, user: String, folder: URL) async throws -> Response {
        let target = try davTarget(path: try destinationPath(request), user: user)
        let location = target.location
        guard !location.viewPath.isEmpty else { throw DAVError.forbidden("Cannot upload to the root") }
        let existing = try item(location)
        if let existing {
            guard !existing.isFolder else { throw DAVError.conflict("The destination is a folder") }
            try requirePermission(location, 2)
            try checkLock(existing, user: user, request: request, hrefBase: target.hrefBase)
        } else {
            _ = try parentItem(target)
            try requirePermission(location, location.isMountRoot ? 2 : 4)
        }
        let chunks = chunkNames(folder).map { folder.appendingPathComponent($0) }
        try FileManager.default.createDirectory(at: tmpRoot, withIntermediateDirectories: true)
        let temp = tmpRoot.appendingPathComponent(UUID().uuidString)
        let total = try await BlockingIO.run { () -> Int64 in
            guard FileManager.default.createFile(atPath: temp.path, contents: nil) else { return -1 }
            let output = try FileHandle(forWritingTo: temp)
            defer { try? output.close() }
            var total: Int64 = 0
            for chunk in chunks {
                let input = try FileHandle(forReadingFrom: chunk)
                defer { try? input.close() }
                while let data = try input.read(upToCount: 1 << 20), !data.isEmpty {
                    try output.write(contentsOf: data)
                    total += Int64(data.count)
                }
            }
            return total
        }
        if let expected = request.headers[.ocTotalLength].flatMap(Int64.init), expected != total {
            try? FileManager.default.removeItem(at: temp)
            throw DAVError.badRequest("Chunks on server do not sum up to \(expected) but to \(total) bytes")
        }
        if let free = try freeBytes(user: location.owner), total - (existing?.size ?? 0) > free {
            try? FileManager.default.removeItem(at: temp)
            throw DAVError.insufficientStorage("Insufficient space in /\(location.viewPath)")
        }
        let mtime = mtimeHeader(request)
        let (record, existed): (NodeRecord, Bool)
        do {
            (record, existed) = try installFile(
                from: temp, at: location, mtime: mtime ?? Int64(Date().timeIntervalSince1970),
                checksum: request.headers[.ocChecksum], author: user)
        } catch {
            try? FileManager.default.removeItem(at: temp)
            throw error
        }
        try? FileManager.default.removeItem(at: folder)
        logger.debug("devcloud.chunked.assembled", metadata: ["user": "\(user)", "bytes": "\(total)"])
        var headers = writeHeaders(record, owner: location.owner, mtimeAccepted: mtime != nil)
        headers[.ncOwnerId] = nil
        headers[.ncPermissions] = nil
        return HTTP.empty(existed ? 204 : 201, headers: headers)
    }
}
