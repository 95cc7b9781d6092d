import Foundation
internal import GRDB
import Synchronization

/// The server's SQLite database under `--data`: failure counts and bans per remote address (so a restart forgives
/// nothing) and a small configuration table. Named migrations; the version log arrives as a later migration.
final class AbuseStore: Sendable {
    /// What a failure leads to.
    enum Verdict: Equatable, Sendable {
        case refuse
        case delayThenRefuse(Duration)
        case banned(until: Date)
    }

    private let pool: DatabasePool
    private let activeBans: Mutex<[String: Date]>
    private let delayThreshold: Int
    private let banThreshold: Int
    private let failureDelay: Duration
    private let failureWindow: TimeInterval
    private let banDuration: TimeInterval

    init(directory: String, configuration: SignalServerConfiguration) throws {
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var dbConfiguration = Configuration()
        dbConfiguration.busyMode = .timeout(5)
        pool = try DatabasePool(path: directory + "/signal.sqlite", configuration: dbConfiguration)
        try Self.migrator.migrate(pool)
        delayThreshold = configuration.delayThreshold
        banThreshold = configuration.banThreshold
        failureDelay = configuration.failureDelay
        failureWindow = configuration.failureWindow.seconds
        banDuration = configuration.banDuration.seconds
        let now = Date().timeIntervalSince1970
        let rows = try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT address, until FROM ban WHERE until > ?", arguments: [now])
        }
        var bans: [String: Date] = [:]
        for row in rows {
            let address: String = row["address"]
            let until: Double = row["until"]
            bans[address] = Date(timeIntervalSince1970: until)
        }
        activeBans = Mutex(bans)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: failures, bans, configuration") { db in
            try db.execute(
                sql: """
                    CREATE TABLE failure (
                        address TEXT PRIMARY KEY,
                        count INTEGER NOT NULL CHECK (count > 0),
                        firstAt DOUBLE NOT NULL,
                        lastAt DOUBLE NOT NULL
                    ) WITHOUT ROWID;
                    CREATE TABLE ban (
                        address TEXT PRIMARY KEY,
                        until DOUBLE NOT NULL,
                        reason TEXT NOT NULL,
                        createdAt DOUBLE NOT NULL
                    ) WITHOUT ROWID;
                    CREATE TABLE config (
                        key TEXT PRIMARY KEY,
                        value TEXT NOT NULL
                    ) WITHOUT ROWID;
                    """)
        }
        return migrator
    }

    /// The end of the address's ban, if it is banned now.
    func bannedUntil(_ address: String, now: Date = Date()) -> Date? {
        activeBans.withLock { bans in
            guard let until = bans[address] else { return nil }
            if until > now { return until }
            bans[address] = nil
            return nil
        }
    }

    var activeBanCount: Int {
        let now = Date()
        return activeBans.withLock { bans in bans.values.count { $0 > now } }
    }

    /// Counts one failure for `address` in one transaction and says what to do.
    func recordFailure(_ address: String, reason: SignalErrorCode, now: Date = Date()) async throws -> Verdict {
        let timestamp = now.timeIntervalSince1970
        let (window, banThreshold, delayThreshold, banDuration) = (
            failureWindow, self.banThreshold, self.delayThreshold, self.banDuration
        )
        let count: Int = try await pool.write { db in
            let row = try Row.fetchOne(
                db, sql: "SELECT count, lastAt FROM failure WHERE address = ?", arguments: [address])
            var count = 1
            if let row, timestamp - (row["lastAt"] as Double) < window {
                count = (row["count"] as Int) + 1
            }
            try db.execute(
                sql: """
                    INSERT INTO failure(address, count, firstAt, lastAt) VALUES (?, ?, ?, ?)
                    ON CONFLICT(address) DO UPDATE SET count = excluded.count, lastAt = excluded.lastAt,
                        firstAt = CASE WHEN excluded.count = 1 THEN excluded.firstAt ELSE firstAt END
                    """,
                arguments: [address, count, timestamp, timestamp])
            if count >= banThreshold {
                try db.execute(
                    sql: """
                        INSERT INTO ban(address, until, reason, createdAt) VALUES (?, ?, ?, ?)
                        ON CONFLICT(address) DO UPDATE SET until = excluded.until, reason = excluded.reason,
                            createdAt = excluded.createdAt
                        """,
                    arguments: [address, timestamp + banDuration, reason.rawValue, timestamp])
                try db.execute(sql: "DELETE FROM failure WHERE address = ?", arguments: [address])
            }
            return count
        }
        if count >= banThreshold {
            let until = Date(timeIntervalSince1970: timestamp + banDuration)
            activeBans.withLock { $0[address] = until }
            return .banned(until: until)
        }
        if count >= delayThreshold { return .delayThenRefuse(failureDelay) }
        return .refuse
    }

    /// Reads a configuration value.
    func config(_ key: String) throws -> String? {
        try pool.read { db in try String.fetchOne(db, sql: "SELECT value FROM config WHERE key = ?", arguments: [key]) }
    }

    /// Writes a configuration value.
    func setConfig(_ key: String, _ value: String) throws {
        try pool.write { db in
            try db.execute(
                sql:
                    "INSERT INTO config(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                arguments: [key, value])
        }
    }

    /// Drops expired bans and stale failure rows (called at start).
    func prune(now: Date = Date()) throws {
        let timestamp = now.timeIntervalSince1970
        try pool.write { db in
            try db.execute(sql: "DELETE FROM ban WHERE until <= ?", arguments: [timestamp])
            try db.execute(sql: "DELETE FROM failure WHERE lastAt < ?", arguments: [timestamp - failureWindow])
        }
    }
}
