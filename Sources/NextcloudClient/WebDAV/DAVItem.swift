public import struct Foundation.Date

/// One file or folder as a PROPFIND describes it.
///
/// `checksums` are whatever the uploader claimed with `OC-Checksum`: Nextcloud stores them
/// without checking, so they are a hint, never proof of the content.
public struct DAVItem: Sendable, Hashable, Codable {
    /// Path relative to the user's root, percent-decoded, starting with `/` (the root is `/`);
    /// folders have no trailing slash.
    public var path: String
    /// True for a collection.
    public var isFolder: Bool
    /// `oc:fileid`: stable across renames and content changes.
    public var fileID: Int64?
    /// `d:getetag` as sent, quotes included, so it can go into `If-Match` unchanged.
    public var etag: String?
    /// A file's `getcontentlength`, or a folder's recursive `oc:size`.
    public var size: Int64?
    /// `d:getlastmodified`.
    public var modified: Date?
    /// `d:getcontenttype` (files only).
    public var contentType: String?
    /// `oc:permissions` parsed; nil when the server did not send the property.
    public var permissions: Permissions?
    /// `oc:permissions` exactly as sent.
    public var permissionLetters: String?
    /// `oc:checksums`, e.g. `SHA1:863468…`: claimed by the uploader, not verified by the server.
    public var checksums: [String]
    /// `oc:owner-id`.
    public var ownerID: String?
    /// `oc:owner-display-name`.
    public var ownerDisplayName: String?
    /// `ocs:share-permissions` bits.
    public var sharePermissions: SharePermissions?
    /// `oc:share-types` (0 = user, 1 = group, 3 = link, …).
    public var shareTypes: [Int]
    /// `nc:mount-type` ("" for the user's own storage, "shared" for incoming shares, "group" …).
    public var mountType: String?
    /// `nc:is-mount-root`: the root of an incoming share or mount.
    public var isMountRoot: Bool
    /// True when the node carries its own ACL rules (`nc:acl-list` present, Group Folders).
    public var hasACLList: Bool
    /// `nc:lock` is set: someone holds a lock on the file.
    public var isLocked: Bool
    /// `nc:lock-owner`, when locked.
    public var lockOwner: String?
    /// `d:quota-available-bytes` (-3 means unlimited).
    public var quotaAvailableBytes: Int64?
    /// `d:quota-used-bytes`.
    public var quotaUsedBytes: Int64?

    /// The last path component ("" for the root).
    public var name: String {
        path.split(separator: "/").last.map(String.init) ?? ""
    }

    /// A new item; only `path` and `isFolder` are required.
    public init(path: String, isFolder: Bool) {
        self.path = path
        self.isFolder = isFolder
        checksums = []
        shareTypes = []
        isMountRoot = false
        hasACLList = false
        isLocked = false
    }
}
