import Foundation
import Hummingbird

/// files_lock-style user locks (`X-User-Lock: 1`) and plain WebDAV locks (058–072).
extension DevCloudServer {
    func currentLock(fileid: Int64) -> FileLock? {
        state.withLock { state in
            if let lock = state.locks[fileid], lock.isExpired { state.locks[fileid] = nil }
            return state.locks[fileid]
        }
    }

    /// 423 when someone else holds a user lock, or when a WebDAV lock's token is not in the `If` header.
    func checkLock(_ item: Item, user: String, request: Request, hrefBase: String) throws {
        guard let lock = currentLock(fileid: item.fileid) else { return }
        switch lock.kind {
        case .user where lock.owner == user: return
        case .webdav where (request.headers[.davIf] ?? "").contains(lock.token): return
        default:
            let href = String(hrefBase.drop(while: { $0 == "/" }).dropFirst("remote.php/dav/".count))
            let path = (href.isEmpty ? "files/\(user)" : href) + "/" + item.location.viewPath
            throw DAVError(
                423, "Sabre\\DAV\\Exception\\Locked", "",
                extraXML:
                    "  <d:lock-token-submitted>\n    <d:href>\(XML.escape(path))</d:href>\n  </d:lock-token-submitted>\n"
            )
        }
    }

    func lock(_ request: Request, target: DAVTarget) async throws -> Response {
        let item = try existingItem(target)
        let body = try await HTTP.collect(request)
        guard !item.isFolder else { throw DAVError.forbidden("Folders cannot be locked here") }
        try requirePermission(target.location, 2)
        if let existing = currentLock(fileid: item.fileid) {
            return HTTP.xml(423, try lockPropsXML(existing, etag: item.record.etag))
        }
        let now = Int64(Date().timeIntervalSince1970)
        let isUserLock = request.headers[.xUserLock] == "1"
        var timeout: Int64 = -60
        if !isUserLock {
            timeout = 1800
            if let header = request.headers[.timeout], header.hasPrefix("Second-"),
                let seconds = Int64(header.dropFirst(7))
            {
                timeout = seconds
            }
        }
        let davOwner = XML.parse(body)?.child(.dav("owner"))?.text
        let lock = FileLock(
            kind: isUserLock ? .user : .webdav, owner: target.user, ownerDisplayName: try displayName(target.user),
            davOwner: davOwner, token: UUID().uuidString.lowercased(), created: now, timeout: timeout)
        state.withLock { $0.locks[item.fileid] = lock }
        let record = try store.touchMetadata(id: item.fileid) ?? item.record
        if isUserLock {
            return HTTP.xml(200, try lockPropsXML(lock, etag: record.etag))
        }
        let xml =
            "<?xml version=\"1.0\"?>\n<d:prop xmlns:d=\"DAV:\" xmlns:s=\"http://sabredav.org/ns\" xmlns:oc=\"http://owncloud.org/ns\" xmlns:nc=\"http://nextcloud.org/ns\">\n <d:lockdiscovery>\n"
            + activeLockXML(lock, href: href(item, base: target.hrefBase), indent: true)
            + " </d:lockdiscovery>\n</d:prop>\n"
        return HTTP.xml(200, xml, headers: [.lockToken: "<opaquelocktoken:\(lock.token)>"])
    }

    func unlock(_ request: Request, target: DAVTarget) throws -> Response {
        let item = try existingItem(target)
        guard let lock = currentLock(fileid: item.fileid) else {
            throw DAVError(409, "Sabre\\DAV\\Exception\\LockTokenMatchesRequestUri", "No lock on this file")
        }
        if request.headers[.xUserLock] == "1" {
            guard lock.owner == target.user else {
                return HTTP.xml(423, try lockPropsXML(lock, etag: item.record.etag))
            }
            state.withLock { $0.locks[item.fileid] = nil }
            let record = try store.touchMetadata(id: item.fileid) ?? item.record
            let xml =
                "<?xml version=\"1.0\"?>\n<d:prop xmlns:d=\"DAV:\" xmlns:s=\"http://sabredav.org/ns\" xmlns:oc=\"http://owncloud.org/ns\" xmlns:nc=\"http://nextcloud.org/ns\">\n <d:getetag>\(record.etag)</d:getetag>\n <nc:lock></nc:lock>\n <nc:lock-owner-type/>\n <nc:lock-owner/>\n <nc:lock-owner-displayname/>\n <nc:lock-owner-editor/>\n <nc:lock-time/>\n <nc:lock-timeout/>\n <nc:lock-token/>\n</d:prop>\n"
            return HTTP.xml(200, xml)
        }
        guard let header = request.headers[.lockToken], header.contains(lock.token) else {
            throw DAVError(423, "Sabre\\DAV\\Exception\\Locked", "")
        }
        state.withLock { $0.locks[item.fileid] = nil }
        _ = try store.touchMetadata(id: item.fileid)
        return HTTP.empty(204)
    }

    /// The `<d:prop>` body of a files_lock answer (058, 061, 062); its getetag is unquoted.
    func lockPropsXML(_ lock: FileLock, etag: String) throws -> String {
        "<?xml version=\"1.0\"?>\n<d:prop xmlns:d=\"DAV:\" xmlns:s=\"http://sabredav.org/ns\" xmlns:oc=\"http://owncloud.org/ns\" xmlns:nc=\"http://nextcloud.org/ns\">\n"
            + " <d:getetag>\(XML.escape(etag))</d:getetag>\n <nc:lock>1</nc:lock>\n"
            + " <nc:lock-owner-type>\(lock.kind == .user ? 0 : 2)</nc:lock-owner-type>\n"
            + " <nc:lock-owner>\(XML.escape(lock.owner))</nc:lock-owner>\n"
            + " <nc:lock-owner-displayname>\(XML.escape(lock.ownerDisplayName))</nc:lock-owner-displayname>\n"
            + " <nc:lock-owner-editor>\(XML.escape(lock.owner))</nc:lock-owner-editor>\n"
            + " <nc:lock-time>\(lock.created)</nc:lock-time>\n <nc:lock-timeout>\(lock.timeout)</nc:lock-timeout>\n"
            + " <nc:lock-token>\(lock.kind == .user ? "files_lock/" : "")\(lock.token)</nc:lock-token>\n</d:prop>\n"
    }

    /// `<d:activelock>`; the LOCK answer says depth infinity (066), PROPFIND says 1 (059, 067).
    func activeLockXML(_ lock: FileLock, href: String, indent: Bool) -> String {
        let token = lock.kind == .user ? "files_lock/\(lock.token)" : lock.token
        let depth = indent ? "infinity" : "1"
        let owner = lock.kind == .user ? lock.ownerDisplayName : (lock.davOwner ?? lock.owner)
        let parts = [
            "<d:activelock>", "<d:lockscope><d:exclusive/></d:lockscope>", "<d:locktype><d:write/></d:locktype>",
            "<d:lockroot><d:href>\(XML.escape(href))</d:href></d:lockroot>", "<d:depth>\(depth)</d:depth>",
            "<d:timeout>Second-\(lock.timeout)</d:timeout>",
            "<d:locktoken><d:href>opaquelocktoken:\(XML.escape(token))</d:href></d:locktoken>",
            "<d:owner>\(XML.escape(owner))</d:owner>", "</d:activelock>",
        ]
        return indent ? parts.map { "  " + $0 + "\n" }.joined() : parts.joined()
    }
}
