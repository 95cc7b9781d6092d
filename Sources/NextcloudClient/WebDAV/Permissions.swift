/// The letters of `oc:permissions` (and the `X-NC-Permissions` header) as a typed set.
///
/// Meanings, from Nextcloud's `OCA\DAV\Connector\Sabre\Node::getDavPermissions` and the
/// recorded samples (owner: `RGDNVCK` on a folder, `RGDNVW` on a file; read-only share
/// recipient: `SGDN` on the mount root, `SG` inside it):
///
/// | letter | member | meaning |
/// |---|---|---|
/// | (none) | `read` | implicit: a node that is listed at all can be read |
/// | `G` | `read` | readable, sent explicitly since Nextcloud 27 |
/// | `S` | `shared` | the node reached this user through a share |
/// | `M` | `mounted` | the node lives on an external or group-folder mount |
/// | `R` | `share` | the user may re-share it |
/// | `W` | `write` | a file's content may be changed |
/// | `C` | `createFile` | new files may be created in the folder |
/// | `K` | `createFolder` | new sub-folders may be created in the folder |
/// | `D` | `delete` | may be deleted (on a share's mount root: the share may be left) |
/// | `N` | `rename` | may be renamed |
/// | `V` | `move` | may be moved |
///
/// Letters not in this table are kept in `unknownLetters` and otherwise ignored.
public struct Permissions: OptionSet, Sendable, Hashable, Codable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let read = Permissions(rawValue: 1 << 0)
    public static let write = Permissions(rawValue: 1 << 1)
    public static let createFile = Permissions(rawValue: 1 << 2)
    public static let createFolder = Permissions(rawValue: 1 << 3)
    public static let delete = Permissions(rawValue: 1 << 4)
    public static let share = Permissions(rawValue: 1 << 5)
    public static let rename = Permissions(rawValue: 1 << 6)
    public static let move = Permissions(rawValue: 1 << 7)
    public static let shared = Permissions(rawValue: 1 << 8)
    public static let mounted = Permissions(rawValue: 1 << 9)

    private static let letters: [(Character, Permissions)] = [
        ("G", .read), ("S", .shared), ("M", .mounted), ("R", .share), ("W", .write),
        ("C", .createFile), ("K", .createFolder), ("D", .delete), ("N", .rename), ("V", .move),
    ]

    /// Parses Nextcloud's letters; `read` is always included.
    public init(letters: String) {
        var set: Permissions = .read
        for letter in letters {
            if let entry = Self.letters.first(where: { $0.0 == letter }) { set.insert(entry.1) }
        }
        self = set
    }

    /// Letters of `text` that this type does not know.
    public static func unknownLetters(in text: String) -> String {
        String(text.filter { letter in !letters.contains { $0.0 == letter } })
    }

    /// May the user change this file's content (or, for a folder, add files to it)?
    public var canModifyContent: Bool { contains(.write) || contains(.createFile) }

    /// The Nextcloud letters in the order Nextcloud writes them (`G` stands for `read`).
    public var letters: String {
        let order: [(Character, Permissions)] = [
            ("S", .shared), ("R", .share), ("M", .mounted), ("G", .read), ("D", .delete), ("N", .rename),
            ("V", .move), ("W", .write), ("C", .createFile), ("K", .createFolder),
        ]
        return String(order.compactMap { contains($0.1) ? $0.0 : nil })
    }

    public var description: String { letters }
}

/// OCS share permission bits (read 1, update 2, create 4, delete 8, share 16).
public struct SharePermissions: OptionSet, Sendable, Hashable, Codable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let read = SharePermissions(rawValue: 1)
    public static let update = SharePermissions(rawValue: 2)
    public static let create = SharePermissions(rawValue: 4)
    public static let delete = SharePermissions(rawValue: 8)
    public static let share = SharePermissions(rawValue: 16)
    /// Everything (31).
    public static let all: SharePermissions = [.read, .update, .create, .delete, .share]
}
