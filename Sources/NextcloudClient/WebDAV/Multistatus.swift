internal import Foundation

/// Turns a `207 Multi-Status` body into items, by namespace URI.
enum Multistatus {
    /// The properties harp asks for in every PROPFIND (Nextcloud's allprop omits oc:/nc: ones).
    static let propfindBody = Data(
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns" \
        xmlns:ocs="http://open-collaboration-services.org/ns">
          <d:prop>
            <d:getetag/><d:getcontentlength/><d:getlastmodified/><d:getcontenttype/><d:resourcetype/>
            <d:quota-available-bytes/><d:quota-used-bytes/>
            <oc:fileid/><oc:permissions/><oc:checksums/><oc:size/><oc:owner-id/><oc:owner-display-name/>
            <oc:share-types/><nc:mount-type/><nc:is-mount-root/><nc:acl-list/><nc:lock/><nc:lock-owner/>
            <ocs:share-permissions/>
          </d:prop>
        </d:propfind>
        """.utf8)

    /// One `d:response`: an item, or an href harp refuses to use (with the href as sent and why).
    enum Entry: Sendable, Hashable {
        case item(DAVItem)
        case refused(href: String, reason: HrefRefusal)
    }

    /// Parses the body; `rootHref` is the percent-decoded href prefix that maps to path `/`
    /// (e.g. `/remote.php/dav/files/alice`). Responses whose href is outside it or names a path harp refuses
    /// (`HrefPath`) are skipped.
    static func parse(_ body: Data, rootHref: String, path: String?) throws(NextcloudError) -> [DAVItem] {
        try parseEntries(body, rootHref: rootHref, path: path).compactMap { entry in
            if case .item(let item) = entry { item } else { nil }
        }
    }

    /// Every response of the body in order, refused hrefs included.
    static func parseEntries(_ body: Data, rootHref: String, path: String?) throws(NextcloudError) -> [Entry] {
        let root = try XMLElement.parse(body, path: path)
        guard root.namespace == XMLNamespace.dav, root.name == "multistatus" else {
            throw NextcloudError(.malformedResponse, path: path, detail: "expected a DAV multistatus document")
        }
        var entries: [Entry] = []
        for response in root.children(XMLNamespace.dav, "response") {
            guard let href = response.child(XMLNamespace.dav, "href")?.trimmedText else { continue }
            let relative: String
            switch HrefPath.segments(href: href, rootHref: rootHref) {
            case .success(let names): relative = "/" + names.joined(separator: "/")
            case .failure(let reason):
                entries.append(.refused(href: HrefPath.printable(href), reason: reason))
                continue
            }
            let props = response.children(XMLNamespace.dav, "propstat")
                .filter { isOK($0.child(XMLNamespace.dav, "status")?.trimmedText) }
                .flatMap { $0.child(XMLNamespace.dav, "prop")?.children ?? [] }
            if props.isEmpty, response.child(XMLNamespace.dav, "status") != nil { continue }
            entries.append(.item(item(path: relative, hrefIsFolder: href.hasSuffix("/"), props: props)))
        }
        return entries
    }

    /// The href's path below `rootHref`, percent-decoded, as `/a/b` (`/` for the root itself); nil when the href
    /// lies outside `rootHref` or names a path harp refuses.
    static func relativePath(href: String, rootHref: String) -> String? {
        guard case .success(let names) = HrefPath.segments(href: href, rootHref: rootHref) else { return nil }
        return "/" + names.joined(separator: "/")
    }

    private static func isOK(_ status: String?) -> Bool {
        guard let status else { return false }
        let parts = status.split(separator: " ")
        return parts.count >= 2 && parts[1].hasPrefix("2")
    }

    private static func item(path: String, hrefIsFolder: Bool, props: [XMLElement]) -> DAVItem {
        func prop(_ ns: String, _ name: String) -> XMLElement? {
            props.first { $0.namespace == ns && $0.name == name }
        }
        func text(_ ns: String, _ name: String) -> String? { prop(ns, name)?.trimmedText }
        func integer(_ ns: String, _ name: String) -> Int64? { text(ns, name).flatMap { Int64($0) } }

        let resourceType = prop(XMLNamespace.dav, "resourcetype")
        let isFolder = resourceType.map { $0.child(XMLNamespace.dav, "collection") != nil } ?? hrefIsFolder
        var item = DAVItem(path: path, isFolder: isFolder)
        item.fileID = integer(XMLNamespace.owncloud, "fileid")
        item.etag = text(XMLNamespace.dav, "getetag").flatMap { $0.isEmpty ? nil : $0 }
        item.size = integer(XMLNamespace.dav, "getcontentlength") ?? integer(XMLNamespace.owncloud, "size")
        item.modified = text(XMLNamespace.dav, "getlastmodified").flatMap(HTTPDate.parse)
        item.contentType = text(XMLNamespace.dav, "getcontenttype").flatMap { $0.isEmpty ? nil : $0 }
        if let letters = text(XMLNamespace.owncloud, "permissions") {
            item.permissionLetters = letters
            item.permissions = Permissions(letters: letters)
        }
        item.checksums =
            prop(XMLNamespace.owncloud, "checksums")?.children(XMLNamespace.owncloud, "checksum")
            .flatMap { $0.trimmedText.split(separator: " ").map(String.init) } ?? []
        item.ownerID = text(XMLNamespace.owncloud, "owner-id")
        item.ownerDisplayName = text(XMLNamespace.owncloud, "owner-display-name")
        item.sharePermissions = text(XMLNamespace.ocs, "share-permissions").flatMap { Int($0) }
            .map(SharePermissions.init(rawValue:))
        item.shareTypes =
            prop(XMLNamespace.owncloud, "share-types")?.children(XMLNamespace.owncloud, "share-type")
            .compactMap { Int($0.trimmedText) } ?? []
        item.mountType = text(XMLNamespace.nextcloud, "mount-type")
        item.isMountRoot = text(XMLNamespace.nextcloud, "is-mount-root") == "true"
        item.hasACLList = prop(XMLNamespace.nextcloud, "acl-list").map { !$0.children.isEmpty } ?? false
        item.isLocked = text(XMLNamespace.nextcloud, "lock") == "1"
        item.lockOwner = item.isLocked ? text(XMLNamespace.nextcloud, "lock-owner") : nil
        item.quotaAvailableBytes = integer(XMLNamespace.dav, "quota-available-bytes")
        item.quotaUsedBytes = integer(XMLNamespace.dav, "quota-used-bytes")
        return item
    }
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only date format Nextcloud sends.
enum HTTPDate {
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func parse(_ text: String) -> Date? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT", let day = Int(parts[1]), let year = Int(parts[3]),
            let monthIndex = months.firstIndex(of: String(parts[2]))
        else { return nil }
        let clock = parts[4].split(separator: ":").compactMap { Int($0) }
        guard clock.count == 3, (1...31).contains(day), (0...23).contains(clock[0]), (0...59).contains(clock[1]),
            (0...60).contains(clock[2])
        else { return nil }
        let days = daysFromCivil(year: year, month: monthIndex + 1, day: day)
        let seconds = days * 86_400 + clock[0] * 3600 + clock[1] * 60 + clock[2]
        return Date(timeIntervalSince1970: TimeInterval(seconds))
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    private static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
