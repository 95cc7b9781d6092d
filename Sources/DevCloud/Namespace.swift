import Foundation

/// Where a path in a user's WebDAV tree really lives: in the user's own tree, or inside a share mounted in it.
struct Location: Sendable {
    /// The user whose tree the path is seen from.
    var viewer: String
    /// Path in the viewer's tree, no leading slash ("" = root).
    var viewPath: String
    /// Whose disk the node is on.
    var owner: String
    /// Path in the owner's tree.
    var ownerPath: String
    /// The share the viewer reaches it through, nil for the owner.
    var share: ShareRecord?

    var isMountRoot: Bool {
        guard let share else { return false }
        return ownerPath == String(share.path.dropFirst())
    }
    /// OCS permission bits the viewer has here.
    var permissions: Int { share?.permissions ?? 31 }
    var name: String { viewPath.split(separator: "/").last.map(String.init) ?? "" }

    func child(_ name: String) -> Location {
        var copy = self
        copy.viewPath = viewPath.isEmpty ? name : viewPath + "/" + name
        copy.ownerPath = ownerPath.isEmpty ? name : ownerPath + "/" + name
        return copy
    }

    var parentViewPath: String {
        var parts = viewPath.split(separator: "/")
        if !parts.isEmpty { parts.removeLast() }
        return parts.joined(separator: "/")
    }
}

/// What DevCloud knows about one existing node.
struct Item: Sendable {
    var location: Location
    var isFolder: Bool
    /// File size, or the recursive total of a folder.
    var size: Int64
    var record: NodeRecord

    var fileid: Int64 { record.id ?? 0 }
}

/// A path that cannot name anything (empty segments, `.` or `..`).
struct InvalidPath: Error {}

/// Splits and checks a percent-decoded relative path.
func normalizedPath(_ raw: String) throws -> String {
    var parts: [String] = []
    for segment in raw.split(separator: "/", omittingEmptySubsequences: true) {
        if segment == "." || segment == ".." || segment.contains("\0") { throw InvalidPath() }
        parts.append(String(segment))
    }
    return parts.joined(separator: "/")
}

extension DevCloudServer {
    /// Maps a path in `viewer`'s tree to its real place; shares mounted at the viewer's root take part.
    func resolve(viewer: String, viewPath: String) throws -> Location {
        let first = viewPath.split(separator: "/").first.map(String.init) ?? ""
        if !first.isEmpty, !fileExists(owner: viewer, path: first) {
            for share in try store.shares(sharee: viewer) where share.mountName == first {
                let rest = viewPath.dropFirst(first.count).drop(while: { $0 == "/" })
                let base = String(share.path.dropFirst())
                let ownerPath = rest.isEmpty ? base : base + "/" + rest
                return Location(
                    viewer: viewer, viewPath: viewPath, owner: share.owner, ownerPath: ownerPath, share: share)
            }
        }
        return Location(viewer: viewer, viewPath: viewPath, owner: viewer, ownerPath: viewPath, share: nil)
    }

    func diskURL(owner: String, path: String) -> URL {
        var url = filesRoot.appendingPathComponent(owner, isDirectory: true)
        for part in path.split(separator: "/") { url.appendPathComponent(String(part)) }
        return url
    }

    func fileExists(owner: String, path: String) -> Bool {
        FileManager.default.fileExists(atPath: diskURL(owner: owner, path: path).path)
    }

    /// Stats a location; nil if nothing is there.
    func item(_ location: Location) throws -> Item? {
        let url = diskURL(owner: location.owner, path: location.ownerPath)
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path) else {
            try store.forget(owner: location.owner, path: location.ownerPath)
            return nil
        }
        let isFolder = (attributes[.type] as? FileAttributeType) == .typeDirectory
        let diskMtime = Int64((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)
        let record = try store.node(
            owner: location.owner, path: location.ownerPath, isFolder: isFolder, diskMtime: diskMtime)
        var size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
        if isFolder {
            size = Self.treeSize(url)
            if location.viewPath.isEmpty && location.share == nil {
                for share in try store.shares(sharee: location.viewer) {
                    size += Self.treeSize(diskURL(owner: share.owner, path: String(share.path.dropFirst())))
                }
            }
        }
        return Item(location: location, isFolder: isFolder, size: size, record: record)
    }

    /// The children of a folder item, with the viewer's share mounts at the viewer's root.
    func children(of item: Item) throws -> [Item] {
        guard item.isFolder else { return [] }
        let url = diskURL(owner: item.location.owner, path: item.location.ownerPath)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        var result: [Item] = []
        for name in names.sorted() {
            if let child = try self.item(item.location.child(name)) { result.append(child) }
        }
        if item.location.viewPath.isEmpty && item.location.share == nil {
            for share in try store.shares(sharee: item.location.viewer) where !names.contains(share.mountName) {
                let location = Location(
                    viewer: item.location.viewer, viewPath: share.mountName, owner: share.owner,
                    ownerPath: String(share.path.dropFirst()), share: share)
                if let child = try self.item(location) { result.append(child) }
            }
        }
        return result
    }

    static func treeSize(_ url: URL) -> Int64 {
        guard let enumerator = FileManager.default.enumerator(atPath: url.path) else { return 0 }
        var total: Int64 = 0
        while let name = enumerator.nextObject() as? String {
            let path = url.appendingPathComponent(name).path
            if let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                (attributes[.type] as? FileAttributeType) == .typeRegular
            {
                total += (attributes[.size] as? NSNumber)?.int64Value ?? 0
            }
        }
        return total
    }

    /// Bytes used by a user's own files (shares count for their owner).
    func usedBytes(user: String) -> Int64 {
        Self.treeSize(filesRoot.appendingPathComponent(user, isDirectory: true))
    }

    /// Free bytes for a user, nil when unlimited.
    func freeBytes(user: String) throws -> Int64? {
        guard let quota = try store.user(user)?.quotaBytes else { return nil }
        return max(0, quota - usedBytes(user: user))
    }

    /// Nextcloud's permission letters for the viewer of an item (see the recorded PROPFINDs 003–007).
    func davPermissions(_ item: Item, listedAsChild: Bool) -> String {
        guard let share = item.location.share else { return item.isFolder ? "RGDNVCK" : "RGDNVW" }
        let p = share.permissions
        var letters = "S"
        if p & 16 != 0 { letters += "R" }
        letters += "G"
        if item.location.isMountRoot {
            letters += listedAsChild ? "DNV" : "DN"
        } else {
            if p & 8 != 0 { letters += "D" }
            if p & 2 != 0 { letters += "NV" }
        }
        if item.isFolder {
            if p & 4 != 0 { letters += "CK" }
        } else if p & 2 != 0 {
            letters += "W"
        }
        return letters
    }

    /// The OCS share permissions the viewer could pass on (owner: 31 on folders, 19 on files).
    func sharePermissions(_ item: Item) -> Int {
        let bits = item.location.permissions
        return item.isFolder ? bits : bits & 19
    }

    /// `oc:id` / `OC-FileId`: the zero-padded fileid and the instance id.
    func ocID(_ fileid: Int64) -> String {
        String(format: "%08lld", fileid) + instanceID
    }
}
