import Foundation
import Hummingbird

/// A request aimed at a user's files tree, after authentication and path parsing.
struct DAVTarget {
    var user: String
    var location: Location
    /// "/remote.php/dav/files/USER" or "/remote.php/webdav": what hrefs start with.
    var hrefBase: String
}

extension DevCloudServer {
    static let allowHeader = "OPTIONS, GET, HEAD, DELETE, PROPFIND, PUT, PROPPATCH, COPY, MOVE, REPORT, LOCK, UNLOCK"
    static let davHeader =
        "1, 3, extended-mkcol, access-control, calendarserver-principal-property-search, nc-paginate, nextcloud-checksum-update, nc-calendar-search, nc-enable-birthday-calendar, 2"

    func handleDAV(_ request: Request, context: DevCloudContext) async throws -> Response {
        if isThrottled(address: context.remoteAddress) { return Self.davTooManyRequests }
        let sentCredentials = request.headers[.authorization] != nil
        guard case .user(let user, _) = try authenticate(request, address: context.remoteAddress) else {
            throw Self.davUnauthorized(sentCredentials: sentCredentials)
        }
        let method = request.method.rawValue
        let rawPath = request.uri.path
        let path = rawPath.removingPercentEncoding ?? rawPath
        if path.hasPrefix("/remote.php/dav/uploads/") {
            return try await handleUpload(
                request, user: user, path: String(path.dropFirst("/remote.php/dav/uploads/".count)))
        }
        if path.hasPrefix("/remote.php/dav/versions/") {
            return try await handleVersions(
                request, user: user, path: String(path.dropFirst("/remote.php/dav/versions/".count)))
        }
        let target = try davTarget(path: path, user: user)
        switch method {
        case "OPTIONS":
            return HTTP.empty(
                200,
                headers: [
                    .allow: Self.allowHeader, .dav: Self.davHeader, .msAuthorVia: "DAV",
                    .acceptRanges: "bytes",
                ])
        case "PROPFIND": return try await propfind(request, target: target)
        case "PROPPATCH": return try await proppatch(request, target: target)
        case "GET", "HEAD": return try await get(request, target: target, head: method == "HEAD")
        case "PUT": return try await put(request, target: target)
        case "MKCOL": return try writeLock.withLock { _ in try mkcol(target: target) }
        case "DELETE": return try writeLock.withLock { _ in try delete(request, target: target) }
        case "MOVE", "COPY":
            return try writeLock.withLock { _ in try moveOrCopy(request, target: target, isMove: method == "MOVE") }
        case "LOCK": return try await lock(request, target: target)
        case "UNLOCK": return try unlock(request, target: target)
        default:
            throw DAVError(
                501, "Sabre\\DAV\\Exception\\NotImplemented", "There was no handler found for this \"\(method)\" method"
            )
        }
    }

    /// Maps a decoded request path in the files namespace to a location of `user`'s tree.
    /// Another user's tree is not there for `user`: 404 as Nextcloud answers (011, 014).
    func davTarget(path: String, user: String) throws -> DAVTarget {
        let hrefBase: String
        let rest: String
        if path.hasPrefix("/remote.php/webdav") {
            hrefBase = "/remote.php/webdav"
            rest = String(path.dropFirst(hrefBase.count))
        } else if path.hasPrefix("/remote.php/dav/files/") {
            let tail = path.dropFirst("/remote.php/dav/files/".count)
            let owner = String(tail.prefix(while: { $0 != "/" }))
            let relative = String(tail.dropFirst(owner.count))
            guard owner == user else {
                let first = relative.split(separator: "/").first.map(String.init) ?? ""
                throw DAVError.notFound("File not found: \(first) in '\(owner)'")
            }
            hrefBase = "/remote.php/dav/files/\(owner)"
            rest = relative
        } else {
            throw DAVError.notFound("File with name \(path) could not be located")
        }
        guard let normalized = try? normalizedPath(rest) else { throw DAVError.badRequest("Invalid path") }
        return DAVTarget(user: user, location: try resolve(viewer: user, viewPath: normalized), hrefBase: hrefBase)
    }

    func existingItem(_ target: DAVTarget) throws -> Item {
        guard let item = try item(target.location) else {
            throw DAVError.notFound("File with name /\(target.location.viewPath) could not be located")
        }
        return item
    }

    static func encodeHref(_ path: String) -> String {
        var allowed = CharacterSet.alphanumerics.intersection(
            CharacterSet(charactersIn: Unicode.Scalar(0)..<Unicode.Scalar(128)))
        allowed.insert(charactersIn: "_-.~()/:@")
        return path.addingPercentEncoding(withAllowedCharacters: allowed) ?? path
    }

    func href(_ item: Item, base: String) -> String {
        let path = item.location.viewPath.isEmpty ? "" : "/" + item.location.viewPath
        return Self.encodeHref(base + path + (item.isFolder ? "/" : ""))
    }

    // MARK: PROPFIND

    func propfind(_ request: Request, target: DAVTarget) async throws -> Response {
        let body = try await HTTP.collect(request)
        let what = try PropfindRequest.parse(body)
        let root = try existingItem(target)
        let depth = (request.headers[.depth] ?? "infinity").lowercased()
        var items: [(Item, Bool)] = [(root, false)]
        if root.isFolder && depth != "0" {
            var queue = try children(of: root)
            while !queue.isEmpty {
                let next = queue.removeFirst()
                items.append((next, true))
                if depth == "infinity" && next.isFolder { queue.append(contentsOf: try children(of: next)) }
            }
        }
        var xml = XML.multistatusOpen
        for (item, listed) in items {
            let names: [QName]
            switch what {
            case .allprop, .propname: names = Self.allprops(isFolder: item.isFolder)
            case .props(let requested): names = requested
            }
            var found: [String] = []
            var missing: [String] = []
            for name in names {
                if let value = try property(name, of: item, listedAsChild: listed, hrefBase: target.hrefBase) {
                    found.append(XML.element(name, inner: value.isEmpty ? nil : value))
                } else {
                    missing.append(XML.element(name, inner: nil))
                }
            }
            xml += Self.response(href: href(item, base: target.hrefBase), found: found, missing: missing)
        }
        xml += "</d:multistatus>\n"
        return HTTP.xml(207, xml, headers: [.dav: Self.davHeader, .vary: "Brief,Prefer"])
    }

    static func response(
        href: String, found: [String], missing: [String], foundStatus: String = "HTTP/1.1 200 OK"
    )
        -> String
    {
        var xml = "<d:response><d:href>\(XML.escape(href))</d:href>"
        if !found.isEmpty {
            xml += "<d:propstat><d:prop>" + found.joined() + "</d:prop><d:status>\(foundStatus)</d:status></d:propstat>"
        }
        if !missing.isEmpty {
            xml +=
                "<d:propstat><d:prop>" + missing.joined()
                + "</d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>"
        }
        return xml + "</d:response>"
    }

    /// What `<d:allprop/>` returns: DAV: properties only (009, 010).
    static func allprops(isFolder: Bool) -> [QName] {
        isFolder
            ? [
                .dav("getlastmodified"), .dav("resourcetype"), .dav("quota-used-bytes"), .dav("quota-available-bytes"),
                .dav("getetag"),
            ]
            : [
                .dav("getlastmodified"), .dav("getcontentlength"), .dav("resourcetype"), .dav("getetag"),
                .dav("getcontenttype"),
            ]
    }

    /// The inner XML of a property ("" renders as an empty element), or nil when the node has no such property.
    func property(_ name: QName, of item: Item, listedAsChild: Bool, hrefBase: String) throws -> String? {
        let record = item.record
        let lock = currentLock(fileid: item.fileid)
        switch (name.namespace, name.name) {
        case (XML.dav, "getetag"): return XML.escape("\"\(record.etag)\"")
        case (XML.dav, "getcontentlength"): return item.isFolder ? nil : String(item.size)
        case (XML.dav, "getlastmodified"): return HTTP.httpDate(record.mtime)
        case (XML.dav, "getcontenttype"): return item.isFolder ? nil : MimeType.of(item.location.name)
        case (XML.dav, "resourcetype"): return item.isFolder ? "<d:collection/>" : ""
        case (XML.dav, "quota-used-bytes"): return item.isFolder ? String(item.size) : nil
        case (XML.dav, "quota-available-bytes"):
            guard item.isFolder else { return nil }
            return String(try freeBytes(user: item.location.owner) ?? -3)
        case (XML.oc, "fileid"): return String(item.fileid)
        case (XML.oc, "id"): return ocID(item.fileid)
        case (XML.oc, "permissions"): return davPermissions(item, listedAsChild: listedAsChild)
        case (XML.oc, "checksums"):
            guard let checksum = record.checksum, !item.isFolder else { return nil }
            return "<oc:checksum>\(XML.escape(checksum))</oc:checksum>"
        case (XML.oc, "size"): return String(item.size)
        case (XML.oc, "owner-id"): return XML.escape(item.location.owner)
        case (XML.oc, "owner-display-name"): return XML.escape(try displayName(item.location.owner))
        case (XML.oc, "share-types"):
            let types: Bool
            if item.location.share != nil {
                types = item.location.isMountRoot && !listedAsChild
            } else {
                types = !(try store.shares(owner: item.location.owner, path: "/" + item.location.ownerPath)).isEmpty
            }
            return types ? "<oc:share-type>0</oc:share-type>" : ""
        case (XML.nc, "mount-type"): return item.location.share == nil ? "" : "shared"
        case (XML.nc, "is-mount-root"): return item.location.isMountRoot ? "true" : "false"
        case (XML.nc, "acl-list"): return aclListXML(owner: item.location.owner, ownerPath: item.location.ownerPath)
        case (XML.ocs, "share-permissions"): return String(sharePermissions(item))
        case (XML.nc, "has-preview"): return "false"
        case (XML.nc, "lock"): return lock == nil ? "" : "1"
        case (XML.nc, "lock-owner"): return lock.map { XML.escape($0.owner) }
        case (XML.nc, "lock-owner-displayname"):
            return lock.map { XML.escape($0.kind == .webdav ? ($0.davOwner ?? $0.owner) : $0.ownerDisplayName) }
        case (XML.nc, "lock-owner-type"): return lock.map { $0.kind == .user ? "0" : "2" }
        case (XML.nc, "lock-time"): return lock.map { String($0.created) }
        case (XML.nc, "lock-timeout"): return lock.map { String($0.timeout) }
        case (XML.nc, "lock-token"): return lock.map { $0.kind == .user ? "files_lock/\($0.token)" : $0.token }
        case (XML.dav, "lockdiscovery"):
            guard let lock else { return "" }
            return activeLockXML(lock, href: href(item, base: hrefBase), indent: false)
        case (XML.dav, "supportedlock"):
            return
                "<d:lockentry><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype></d:lockentry><d:lockentry><d:lockscope><d:shared/></d:lockscope><d:locktype><d:write/></d:locktype></d:lockentry>"
        default:
            let props = try store.deadProps(fileid: item.fileid, user: item.location.viewer)
            return props.first { $0.namespace == name.namespace && $0.name == name.name }.map { XML.escape($0.value) }
        }
    }

    func displayName(_ user: String) throws -> String {
        try store.user(user)?.displayName ?? user
    }

    // MARK: PROPPATCH

    /// Dead properties are kept per user (119–124); live properties of DAV:, oc: and nc: are refused with 403.
    func proppatch(_ request: Request, target: DAVTarget) async throws -> Response {
        let item = try existingItem(target)
        let body = try await HTTP.collect(request)
        guard let root = XML.parse(body), root.qname == .dav("propertyupdate") else {
            throw DAVError.badRequest("The request body must be a valid propertyupdate")
        }
        var accepted: [String] = []
        var refused: [String] = []
        for operation in root.children {
            let isSet = operation.qname == .dav("set")
            guard isSet || operation.qname == .dav("remove") else { continue }
            for prop in operation.child(.dav("prop"))?.children ?? [] {
                let name = prop.qname
                if [XML.dav, XML.oc, XML.nc, XML.ocs].contains(name.namespace) {
                    refused.append(XML.element(name, inner: nil))
                    continue
                }
                if isSet {
                    try store.setDeadProp(
                        DeadPropRecord(
                            fileid: item.fileid, user: target.user, namespace: name.namespace, name: name.name,
                            value: prop.text))
                } else {
                    try store.removeDeadProp(
                        fileid: item.fileid, user: target.user, namespace: name.namespace, name: name.name)
                }
                accepted.append(XML.element(name, inner: nil))
            }
        }
        var xml = XML.multistatusOpen + "<d:response><d:href>\(XML.escape(href(item, base: target.hrefBase)))</d:href>"
        if !accepted.isEmpty {
            xml += "<d:propstat><d:prop>\(accepted.joined())</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>"
        }
        if !refused.isEmpty {
            xml +=
                "<d:propstat><d:prop>\(refused.joined())</d:prop><d:status>HTTP/1.1 403 Forbidden</d:status></d:propstat>"
        }
        xml += "</d:response></d:multistatus>\n"
        return HTTP.xml(207, xml)
    }
}

/// Content types by extension, as Nextcloud's mimetype map gives them.
enum MimeType {
    static let map: [String: String] = [
        "mp4": "video/mp4", "m4v": "video/mp4", "mov": "video/quicktime", "mkv": "video/x-matroska",
        "webm": "video/webm", "avi": "video/x-msvideo", "mp3": "audio/mpeg", "wav": "audio/wav",
        "bin": "application/x-bin", "txt": "text/plain", "md": "text/markdown", "json": "application/json",
        "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "pdf": "application/pdf",
        "zip": "application/zip", "tar": "application/x-tar", "gz": "application/x-gzip", "xml": "application/xml",
        "html": "text/html", "csv": "text/csv",
    ]

    static func of(_ name: String) -> String {
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return "application/octet-stream" }
        return map[name[name.index(after: dot)...].lowercased()] ?? "application/octet-stream"
    }
}
