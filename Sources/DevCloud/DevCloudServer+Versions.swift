import Foundation
import Hummingbird

/// `/remote.php/dav/versions/USER/versions/FILEID[/MTIME]` (110–112): kept versions plus the current one,
/// named by their mtime; etags are the bare mtime.
extension DevCloudServer {
    func handleVersions(_ request: Request, user: String, path: String) async throws -> Response {
        let parts = path.split(separator: "/").map(String.init)
        guard parts.count >= 3, parts[0] == user, parts[1] == "versions", let fileid = Int64(parts[2]) else {
            throw DAVError.notFound("File with name \(path) could not be located")
        }
        guard let item = try visibleItem(fileid: fileid, viewer: user), !item.isFolder else {
            throw DAVError.notFound("Versions for file \(parts[2]) not found")
        }
        struct Version {
            var mtime: Int64
            var size: Int64
            var author: String
            var url: URL
        }
        var versions = try store.versions(fileid: fileid).map {
            Version(
                mtime: $0.mtime, size: $0.size, author: $0.author,
                url: versionsRoot.appendingPathComponent(String(fileid)).appendingPathComponent(String($0.mtime)))
        }
        versions.removeAll { $0.mtime == item.record.mtime }
        versions.append(
            Version(
                mtime: item.record.mtime, size: item.size, author: item.record.author ?? item.location.owner,
                url: diskURL(owner: item.location.owner, path: item.location.ownerPath)))
        let base = "/remote.php/dav/versions/\(user)/versions/\(fileid)"
        let method = request.method.rawValue
        if parts.count == 4 {
            guard let version = versions.first(where: { String($0.mtime) == parts[3] }) else {
                throw DAVError.notFound("Version \(parts[3]) not found")
            }
            guard method == "GET" || method == "HEAD" else {
                throw DAVError(405, "Sabre\\DAV\\Exception\\MethodNotAllowed", "\(method) is not allowed on a version")
            }
            return try fileResponse(
                request, url: version.url, size: version.size, etag: String(version.mtime), mtime: version.mtime,
                name: item.location.name, checksum: nil, user: user, head: method == "HEAD",
                contentType: MimeType.of(item.location.name)
                    + (MimeType.of(item.location.name).hasPrefix("text/") ? ";charset=UTF-8" : ""))
        }
        guard method == "PROPFIND" else {
            throw DAVError(405, "Sabre\\DAV\\Exception\\MethodNotAllowed", "\(method) is not allowed here")
        }
        let what = try PropfindRequest.parse(try await HTTP.collect(request))
        let depth = request.headers[.depth] ?? "1"
        var xml = XML.multistatusOpen
        let requested: [QName]? = { if case .props(let names) = what { return names } else { return nil } }()
        let rootNames = requested ?? [.dav("resourcetype")]
        xml += Self.response(
            href: base + "/",
            found: rootNames.contains(.dav("resourcetype")) ? ["<d:resourcetype><d:collection/></d:resourcetype>"] : [],
            missing: rootNames.filter { $0 != .dav("resourcetype") }.map { XML.element($0, inner: nil) })
        if depth != "0" {
            for version in versions {
                let names =
                    requested ?? [
                        .dav("getlastmodified"), .dav("getcontentlength"), .dav("resourcetype"), .dav("getetag"),
                        .dav("getcontenttype"),
                    ]
                var found: [String] = []
                var missing: [String] = []
                for name in names {
                    let value: String?
                    switch (name.namespace, name.name) {
                    case (XML.dav, "getetag"): value = String(version.mtime)
                    case (XML.dav, "getcontentlength"): value = String(version.size)
                    case (XML.dav, "getlastmodified"): value = HTTP.httpDate(version.mtime)
                    case (XML.dav, "getcontenttype"): value = MimeType.of(item.location.name)
                    case (XML.dav, "resourcetype"): value = ""
                    case (XML.nc, "version-author"): value = XML.escape(version.author)
                    case (XML.nc, "has-preview"): value = "true"
                    default: value = nil
                    }
                    if let value {
                        found.append(XML.element(name, inner: value.isEmpty ? nil : value))
                    } else {
                        missing.append(XML.element(name, inner: nil))
                    }
                }
                xml += Self.response(href: base + "/" + String(version.mtime), found: found, missing: missing)
            }
        }
        return HTTP.xml(207, xml + "</d:multistatus>\n")
    }

    /// The item with this fileid as `viewer` sees it: in the viewer's own tree or through a share.
    func visibleItem(fileid: Int64, viewer: String) throws -> Item? {
        guard let record = try store.node(id: fileid) else { return nil }
        if record.owner == viewer {
            return try item(
                Location(viewer: viewer, viewPath: record.path, owner: viewer, ownerPath: record.path, share: nil))
        }
        for share in try store.shares(sharee: viewer) where share.owner == record.owner {
            let base = String(share.path.dropFirst())
            guard record.path == base || record.path.hasPrefix(base + "/") else { continue }
            let viewPath = share.mountName + record.path.dropFirst(base.count)
            return try item(
                Location(viewer: viewer, viewPath: viewPath, owner: record.owner, ownerPath: record.path, share: share))
        }
        return nil
    }
}
