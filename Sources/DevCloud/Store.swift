import Crypto
import Foundation
import GRDB
import HarpBasics

/// One file or folder's identity: the stable fileid, its etag and mtime, and the checksum an uploader claimed.
struct NodeRecord: Codable, FetchableRecord, MutablePersistableRecord, Sendable {
    static let databaseTableName = "node"
    var id: Int64?
    var owner: String
    /// Path inside the owner's tree without a leading slash; "" is the root.
    var path: String
    var etag: String
    var mtime: Int64
    var checksum: String?
    /// Who wrote the current content (nil for files found on disk).
    var author: String?

    mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// A user share.
struct ShareRecord: Codable, FetchableRecord, MutablePersistableRecord, Sendable {
    static let databaseTableName = "share"
    var id: Int64?
    var owner: String
    var path: String
    var sharee: String
    var permissions: Int
    var stime: Int64

    mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
    /// Where the share appears in the sharee's tree (the shared node's name).
    var mountName: String { path.split(separator: "/").last.map(String.init) ?? path }
}

/// An account. The password is kept as a salted SHA-256 (DevCloud is a test server, not a password vault).
struct UserRecord: Codable, FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "user"
    var name: String
    var passwordHash: String
    var salt: String
    var quotaBytes: Int64?
    var displayName: String
    var email: String?
    var created: Int64
}

/// An app password, stored as the SHA-256 of its value.
struct AppPasswordRecord: Codable, FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "apppassword"
    var tokenHash: String
    var user: String
    var name: String
    var created: Int64
}

/// A dead property set with PROPPATCH; per user, as Nextcloud keeps them.
struct DeadPropRecord: Codable, FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "deadprop"
    var fileid: Int64
    var user: String
    var namespace: String
    var name: String
    var value: String
}

/// A kept previous version of a file.
struct VersionRecord: Codable, FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "version"
    var fileid: Int64
    var mtime: Int64
    var size: Int64
    var author: String
}

/// The SQLite index: fileids, etags, users, app passwords, shares, dead properties and versions.
final class Store: Sendable {
    let db: DatabasePool

    init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        db = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(db)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "node") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("owner", .text).notNull()
                t.column("path", .text).notNull()
                t.column("etag", .text).notNull()
                t.column("mtime", .integer).notNull()
                t.column("checksum", .text)
                t.column("author", .text)
                t.uniqueKey(["owner", "path"])
            }
            try db.create(table: "share") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("owner", .text).notNull()
                t.column("path", .text).notNull()
                t.column("sharee", .text).notNull()
                t.column("permissions", .integer).notNull().check { $0 >= 1 && $0 <= 31 }
                t.column("stime", .integer).notNull()
                t.uniqueKey(["owner", "path", "sharee"])
            }
            try db.create(table: "user") { t in
                t.primaryKey("name", .text)
                t.column("passwordHash", .text).notNull()
                t.column("salt", .text).notNull()
                t.column("quotaBytes", .integer)
                t.column("displayName", .text).notNull()
                t.column("email", .text)
                t.column("created", .integer).notNull()
            }
            try db.create(table: "apppassword") { t in
                t.primaryKey("tokenHash", .text)
                t.column("user", .text).notNull()
                t.column("name", .text).notNull()
                t.column("created", .integer).notNull()
            }
            try db.create(table: "deadprop") { t in
                t.column("fileid", .integer).notNull()
                t.column("user", .text).notNull()
                t.column("namespace", .text).notNull()
                t.column("name", .text).notNull()
                t.column("value", .text).notNull()
                t.primaryKey(["fileid", "user", "namespace", "name"])
            }
            try db.create(table: "version") { t in
                t.column("fileid", .integer).notNull()
                t.column("mtime", .integer).notNull()
                t.column("size", .integer).notNull()
                t.column("author", .text).notNull()
                t.primaryKey(["fileid", "mtime"])
            }
            try db.create(table: "meta") { t in
                t.primaryKey("key", .text)
                t.column("value", .text).notNull()
            }
        }
        return migrator
    }

    // MARK: Meta

    /// The instance id that follows the zero-padded fileid in `oc:id` and `OC-FileId` (like `ocifga0e76k7`).
    func instanceID() throws -> String {
        try db.write { db in
            if let value = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'instanceid'") {
                return value
            }
            let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789")
            let value = "oc" + String((0..<10).map { _ in letters.randomElement()! })
            try db.execute(sql: "INSERT INTO meta (key, value) VALUES ('instanceid', ?)", arguments: [value])
            return value
        }
    }

    // MARK: Users

    static func hash(_ secret: String, salt: String) -> String {
        Hex.encode(SHA256.hash(data: Data((salt + ":" + secret).utf8)))
    }

    func upsertUser(_ user: DevCloudConfiguration.User) throws {
        let salt = UUID().uuidString
        let record = UserRecord(
            name: user.name, passwordHash: Self.hash(user.password, salt: salt), salt: salt,
            quotaBytes: user.quotaBytes, displayName: user.displayName, email: user.email,
            created: Int64(Date().timeIntervalSince1970))
        try db.write { db in
            if let existing = try UserRecord.fetchOne(db, key: user.name) {
                var updated = record
                updated.created = existing.created
                try updated.update(db)
            } else {
                try record.insert(db)
            }
        }
    }

    func user(_ name: String) throws -> UserRecord? {
        try db.read { try UserRecord.fetchOne($0, key: name) }
    }

    func allUsers() throws -> [UserRecord] {
        try db.read { try UserRecord.order(Column("name")).fetchAll($0) }
    }

    func checkAccountPassword(user name: String, password: String) throws -> Bool {
        guard let user = try user(name) else { return false }
        return Self.hash(password, salt: user.salt) == user.passwordHash
    }

    // MARK: App passwords

    func createAppPassword(user: String, name: String) throws -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        let token = String((0..<72).map { _ in alphabet.randomElement()! })
        let record = AppPasswordRecord(
            tokenHash: Self.hash(token, salt: "apppassword"), user: user, name: name,
            created: Int64(Date().timeIntervalSince1970))
        try db.write { try record.insert($0) }
        return token
    }

    /// The user an app password belongs to, or nil.
    func appPasswordUser(_ token: String) throws -> String? {
        try db.read { try AppPasswordRecord.fetchOne($0, key: Self.hash(token, salt: "apppassword"))?.user }
    }

    func deleteAppPassword(_ token: String) throws {
        _ = try db.write { try AppPasswordRecord.deleteOne($0, key: Self.hash(token, salt: "apppassword")) }
    }
}
