import Foundation
import GRDB
import HarpBasics

/// Etags as Nextcloud makes them: 32 hex digits for file contents, 13 (like PHP's `uniqid()`) for folders and
/// metadata-only changes such as a lock.
enum ETag {
    static func file() -> String {
        Hex.encode((0..<16).map { _ in UInt8.random(in: 0...255) })
    }

    static func short() -> String {
        let seconds = String(format: "%08x", UInt32(truncatingIfNeeded: Int(Date().timeIntervalSince1970)))
        return seconds + String(format: "%05x", Int.random(in: 0..<0x100000))
    }
}

extension Store {
    private static func subtree(owner: String, path: String) -> SQLRequest<NodeRecord> {
        if path.isEmpty {
            return SQLRequest(sql: "SELECT * FROM node WHERE owner = ?", arguments: [owner])
        }
        let prefix = path + "/"
        return SQLRequest(
            sql: "SELECT * FROM node WHERE owner = ? AND (path = ? OR substr(path, 1, ?) = ?)",
            arguments: [owner, path, prefix.utf8.count, prefix])
    }

    /// The record of an existing node, created (new fileid, new etag) on first sight.
    func node(owner: String, path: String, isFolder: Bool, diskMtime: Int64) throws -> NodeRecord {
        if let found = try db.read({ db in
            try NodeRecord.filter(Column("owner") == owner && Column("path") == path).fetchOne(db)
        }) {
            return found
        }
        return try db.write { db in
            if let found = try NodeRecord.filter(Column("owner") == owner && Column("path") == path).fetchOne(db) {
                return found
            }
            var record = NodeRecord(
                id: nil, owner: owner, path: path, etag: isFolder ? ETag.short() : ETag.file(), mtime: diskMtime,
                checksum: nil, author: nil)
            try record.insert(db)
            return record
        }
    }

    func node(id: Int64) throws -> NodeRecord? {
        try db.read { try NodeRecord.fetchOne($0, key: id) }
    }

    /// Records a content change of a file: new etag, the given mtime and checksum (nil clears it), and new etags
    /// for every folder above it. Keeps the fileid when the record exists.
    @discardableResult
    func fileChanged(owner: String, path: String, mtime: Int64, checksum: String?, author: String?) throws -> NodeRecord
    {
        try db.write { db in
            var record =
                try NodeRecord.filter(Column("owner") == owner && Column("path") == path).fetchOne(db)
                ?? NodeRecord(id: nil, owner: owner, path: path, etag: "", mtime: mtime, checksum: nil, author: nil)
            record.etag = ETag.file()
            record.mtime = mtime
            record.checksum = checksum
            record.author = author
            try record.save(db)
            try Self.propagate(db, owner: owner, path: path, mtime: nil)
            return record
        }
    }

    /// Records a new folder (or returns the existing one), and new etags above it.
    @discardableResult
    func folderCreated(owner: String, path: String, mtime: Int64) throws -> NodeRecord {
        try db.write { db in
            var record =
                try NodeRecord.filter(Column("owner") == owner && Column("path") == path).fetchOne(db)
                ?? NodeRecord(
                    id: nil, owner: owner, path: path, etag: ETag.short(), mtime: mtime, checksum: nil, author: nil)
            try record.save(db)
            try Self.propagate(db, owner: owner, path: path, mtime: mtime)
            return record
        }
    }

    /// New etags for the folders above `path` (not `path` itself), up to the owner's root.
    static func propagate(_ db: Database, owner: String, path: String, mtime: Int64?) throws {
        var components = path.split(separator: "/").map(String.init)
        while !components.isEmpty {
            components.removeLast()
            let parent = components.joined(separator: "/")
            if var record = try NodeRecord.filter(Column("owner") == owner && Column("path") == parent).fetchOne(db) {
                record.etag = ETag.short()
                if let mtime { record.mtime = mtime }
                try record.update(db)
            }
        }
    }

    /// Gives a node a new short etag (metadata change, e.g. a lock) and returns it.
    func touchMetadata(id: Int64) throws -> NodeRecord? {
        try db.write { db in
            guard var record = try NodeRecord.fetchOne(db, key: id) else { return nil }
            record.etag = ETag.short()
            try record.update(db)
            try Self.propagate(db, owner: record.owner, path: record.path, mtime: nil)
            return record
        }
    }

    /// Moves the records of a subtree (keeping fileids); records at the destination are replaced.
    func moveNodes(fromOwner: String, fromPath: String, toOwner: String, toPath: String) throws {
        try db.write { db in
            for record in try Self.subtree(owner: toOwner, path: toPath).fetchAll(db) {
                _ = try record.delete(db)
            }
            for var record in try Self.subtree(owner: fromOwner, path: fromPath).fetchAll(db) {
                record.owner = toOwner
                record.path = toPath + record.path.dropFirst(fromPath.count)
                try record.update(db)
            }
            try Self.propagate(db, owner: fromOwner, path: fromPath, mtime: nil)
            try Self.propagate(db, owner: toOwner, path: toPath, mtime: nil)
            // Shares of the moved node or of anything inside it follow it.
            let from = "/" + fromPath
            for var share in try ShareRecord.filter(Column("owner") == fromOwner).fetchAll(db)
            where share.path == from || share.path.hasPrefix(from + "/") {
                share.owner = toOwner
                share.path = "/" + toPath + share.path.dropFirst(from.count)
                try share.update(db)
            }
        }
    }

    /// Forgets a subtree (after a delete), with its shares, dead properties and version records.
    func deleteNodes(owner: String, path: String) throws -> [Int64] {
        try db.write { db in
            let records = try Self.subtree(owner: owner, path: path).fetchAll(db)
            for record in records {
                _ = try record.delete(db)
                try db.execute(sql: "DELETE FROM deadprop WHERE fileid = ?", arguments: [record.id])
                try db.execute(sql: "DELETE FROM version WHERE fileid = ?", arguments: [record.id])
            }
            let shared = "/" + path
            for share in try ShareRecord.filter(Column("owner") == owner).fetchAll(db)
            where share.path == shared || share.path.hasPrefix(shared + "/") {
                _ = try share.delete(db)
            }
            try Self.propagate(db, owner: owner, path: path, mtime: nil)
            return records.compactMap(\.id)
        }
    }

    /// Forgets a record whose file vanished from disk behind DevCloud's back.
    func forget(owner: String, path: String) throws {
        _ = try db.write { db in
            try NodeRecord.filter(Column("owner") == owner && Column("path") == path).deleteAll(db)
        }
    }

    // MARK: Shares

    func shares(sharee: String) throws -> [ShareRecord] {
        try db.read { try ShareRecord.filter(Column("sharee") == sharee).order(Column("id")).fetchAll($0) }
    }

    func shares(owner: String, path: String? = nil) throws -> [ShareRecord] {
        try db.read { db in
            var request = ShareRecord.filter(Column("owner") == owner)
            if let path { request = request.filter(Column("path") == path) }
            return try request.order(Column("id")).fetchAll(db)
        }
    }

    func share(id: Int64) throws -> ShareRecord? {
        try db.read { try ShareRecord.fetchOne($0, key: id) }
    }

    /// Creates a share, or updates the permissions of the same owner/path/sharee share.
    func upsertShare(owner: String, path: String, sharee: String, permissions: Int) throws -> ShareRecord {
        try db.write { db in
            if var existing = try ShareRecord.filter(
                Column("owner") == owner && Column("path") == path && Column("sharee") == sharee
            ).fetchOne(db) {
                existing.permissions = permissions
                try existing.update(db)
                return existing
            }
            var record = ShareRecord(
                id: nil, owner: owner, path: path, sharee: sharee, permissions: permissions,
                stime: Int64(Date().timeIntervalSince1970))
            try record.insert(db)
            return record
        }
    }

    func deleteShare(id: Int64) throws -> Bool {
        try db.write { try ShareRecord.deleteOne($0, key: id) }
    }

    // MARK: Dead properties

    func deadProps(fileid: Int64, user: String) throws -> [DeadPropRecord] {
        try db.read { try DeadPropRecord.filter(Column("fileid") == fileid && Column("user") == user).fetchAll($0) }
    }

    func setDeadProp(_ record: DeadPropRecord) throws {
        try db.write { try record.save($0) }
    }

    func removeDeadProp(fileid: Int64, user: String, namespace: String, name: String) throws {
        _ = try db.write {
            try DeadPropRecord.deleteOne(
                $0, key: ["fileid": fileid, "user": user, "namespace": namespace, "name": name])
        }
    }

    // MARK: Versions

    func versions(fileid: Int64) throws -> [VersionRecord] {
        try db.read { try VersionRecord.filter(Column("fileid") == fileid).order(Column("mtime")).fetchAll($0) }
    }

    func addVersion(_ record: VersionRecord) throws {
        try db.write { try record.save($0) }
    }
}
