import Foundation

/// The files_sharing OCS API (083–093): list, show, create, update and delete user shares.
extension DevCloudServer {
    func sharesAPI(method: String, id: Int64?, user: String, parameters: [String: String]) throws -> OCSResult {
        let wrongID = OCSResult.failure(404, "Wrong share ID, share does not exist")
        if let id {
            guard let share = try store.share(id: id), share.owner == user || share.sharee == user else {
                return wrongID
            }
            switch method {
            case "GET": return .ok(.array([try shareObject(share, viewer: user)]))
            case "DELETE":
                _ = try store.deleteShare(id: id)
                return .ok(.array([]))
            case "PUT":
                guard share.owner == user else { return .failure(403, "You are not allowed to edit incoming shares") }
                guard let bits = parameters["permissions"].flatMap(Int.init) else {
                    return .failure(400, "Wrong or no update parameter given")
                }
                guard (1...31).contains(bits), bits & 1 != 0 else { return .failure(400, "Invalid permissions") }
                let updated = try store.upsertShare(
                    owner: share.owner, path: share.path, sharee: share.sharee, permissions: bits)
                return .ok(try shareObject(updated, viewer: user))
            default: return .failure(405, "Method not allowed")
            }
        }
        switch method {
        case "GET":
            if parameters["shared_with_me"] == "true" {
                return .ok(.array(try store.shares(sharee: user).map { try shareObject($0, viewer: user) }))
            }
            if let raw = parameters["path"] {
                let wrongPath = OCSResult.failure(404, "Wrong path, file/folder does not exist")
                guard let path = try? normalizedPath(raw), !path.isEmpty else { return wrongPath }
                let location = try resolve(viewer: user, viewPath: path)
                guard try item(location) != nil else { return wrongPath }
                guard location.share == nil else { return .ok(.array([])) }
                return .ok(
                    .array(try store.shares(owner: user, path: "/" + path).map { try shareObject($0, viewer: user) }))
            }
            return .ok(.array(try store.shares(owner: user).map { try shareObject($0, viewer: user) }))
        case "POST":
            let wrongPath = OCSResult.failure(404, "Wrong path, file/folder does not exist")
            guard let raw = parameters["path"], let path = try? normalizedPath(raw), !path.isEmpty else {
                return wrongPath
            }
            let location = try resolve(viewer: user, viewPath: path)
            guard let item = try item(location) else { return wrongPath }
            guard location.share == nil else { return .failure(403, "Resharing is not supported by DevCloud") }
            guard parameters["shareType"] == "0" else { return .failure(400, "Unknown share type") }
            guard let sharee = parameters["shareWith"], try store.user(sharee) != nil, sharee != user else {
                return .failure(404, "Please specify a valid user")
            }
            let bits = parameters["permissions"].flatMap(Int.init) ?? (item.isFolder ? 31 : 19)
            guard (1...31).contains(bits), bits & 1 != 0 else { return .failure(400, "Invalid permissions") }
            let share = try store.upsertShare(owner: user, path: "/" + path, sharee: sharee, permissions: bits)
            return .ok(try shareObject(share, viewer: user, mailSend: true))
        default:
            return .failure(405, "Method not allowed")
        }
    }

    /// A share as OCS shows it, from the owner's or the recipient's side (083 vs 086).
    func shareObject(_ share: ShareRecord, viewer: String, mailSend: Bool = false) throws -> OCSValue {
        let ownerPath = String(share.path.dropFirst())
        let asOwner = share.owner == viewer
        let ownerLocation = Location(
            viewer: share.owner, viewPath: ownerPath, owner: share.owner, ownerPath: ownerPath, share: nil)
        let item = try self.item(ownerLocation)
        var parentLocation = ownerLocation
        parentLocation.viewPath = ownerLocation.parentViewPath
        parentLocation.ownerPath = ownerLocation.parentViewPath
        let parent = try self.item(parentLocation)
        let isFolder = item?.isFolder ?? true
        let ownerName = try displayName(share.owner)
        let itemPermissions = asOwner ? (isFolder ? 31 : 19) : (share.permissions | 8)
        let pairs: [(String, OCSValue)] = [
            ("id", .string(String(share.id ?? 0))), ("share_type", .int(0)), ("uid_owner", .string(share.owner)),
            ("displayname_owner", .string(ownerName)), ("permissions", .int(Int64(share.permissions))),
            ("can_edit", .bool(asOwner)), ("can_delete", .bool(true)), ("stime", .int(share.stime)),
            ("parent", .null), ("expiration", .null), ("token", .null), ("uid_file_owner", .string(share.owner)),
            ("note", .string("")), ("label", .string("")), ("displayname_file_owner", .string(ownerName)),
            ("path", .string(share.path)), ("item_type", .string(isFolder ? "folder" : "file")),
            ("item_permissions", .int(Int64(itemPermissions))), ("is-mount-root", .bool(!asOwner)),
            ("mount-type", .string(asOwner ? "" : "shared")),
            ("mimetype", .string(isFolder ? "httpd/unix-directory" : MimeType.of(share.mountName))),
            ("has_preview", .bool(false)),
            ("storage_id", .string(asOwner ? "home::\(share.owner)" : "shared::/\(share.mountName)")),
            ("storage", .int(3)), ("item_source", .int(item?.fileid ?? 0)), ("file_source", .int(item?.fileid ?? 0)),
            ("file_parent", .int(parent?.fileid ?? 0)), ("file_target", .string("/" + share.mountName)),
            ("item_size", .int(item?.size ?? 0)), ("item_mtime", .int(item?.record.mtime ?? 0)),
            ("share_with", .string(share.sharee)), ("share_with_displayname", .string(try displayName(share.sharee))),
            ("share_with_displayname_unique", .string(share.sharee)), ("mail_send", .int(mailSend ? 1 : 0)),
            ("hide_download", .int(0)), ("attributes", .null),
        ]
        return .object(pairs)
    }
}
