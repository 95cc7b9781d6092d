import Foundation
internal import GRDB
import SignalingProtocol
import Synchronization

/// The server's SQLite database under `--data` (mode 0600): failure counts and bans per client address
/// (``ClientAddress``), so a restart forgives nothing, and a small configuration table. Named migrations; the second
/// holds the version log (``LogStore``) and the witness's state.
///
/// Counts and bans are decided in memory, under one lock, at the moment a proof fails, and written to the database
/// after: a burst of proofs on many connections cannot outrun the ban while the writes queue. A ban does not reset the
/// count: the failure window restarts at the ban's end, so the first failure after it bans again.
final class AbuseStore: Sendable {
    /// What a failure leads to.
    enum Verdict: Equatable, Sendable {
        case refuse
        case delayThenRefuse(Duration)
        case banned(until: Date)
    }

    private struct Failures {
        var count: Int
        /// When the window of this count started to run: the last failure, or the end of the ban it caused.
        var lastAt: Double
    }

    private struct Memory {
        var bans: [String: Date] = [:]
        var failures: [String: Failures] = [:]
    }

    /// The database, shared with the version log (``LogStore``).
    let pool: DatabasePool
    private let memory: Mutex<Memory>
    private let delayThreshold: Int
    private let banThreshold: Int
    private let failureDelay: Duration
    private let failureWindow: TimeInterval
    private let banDuration: TimeInterval
    /// Above this many addresses in memory, expired entries are dropped (amortised: at most once per doubling).
    private let pruneAbove = Atomic<Int>(4096)

    init(directory: String, configuration: SignalServerConfiguration, now: Date = Date()) throws {
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let path = directory + "/signal.sqlite"
        try Self.createPrivately(path)
        var dbConfiguration = Configuration()
        dbConfiguration.busyMode = .timeout(5)
        // An append acknowledged to a client must survive a crash of the machine, not only of the process.
        dbConfiguration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        pool = try DatabasePool(path: path, configuration: dbConfiguration)
        try Self.migrator.migrate(pool)
        delayThreshold = configuration.delayThreshold
        banThreshold = configuration.banThreshold
        failureDelay = configuration.failureDelay
        failureWindow = configuration.failureWindow.seconds
        banDuration = configuration.banDuration.seconds
        let timestamp = now.timeIntervalSince1970
        let window = failureWindow
        var loaded = Memory()
        try pool.read { db in
            for row in try Row.fetchAll(
                db, sql: "SELECT address, until FROM ban WHERE until > ?", arguments: [timestamp])
            {
                loaded.bans[row["address"]] = Date(timeIntervalSince1970: row["until"])
            }
            let failureRows = try Row.fetchAll(
                db, sql: "SELECT address, count, lastAt FROM failure WHERE lastAt > ?",
                arguments: [timestamp - window])
            for row in failureRows {
                loaded.failures[row["address"]] = Failures(count: row["count"], lastAt: row["lastAt"])
            }
        }
        memory = Mutex(loaded)
    }

    /// Creates the database file with mode 0600 before SQLite opens it (SQLite gives its `-wal` and `-shm` files the
    /// database's mode), and narrows an existing one.
    private static func createPrivately(_ path: String) throws {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw SignalServerError.storage("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        close(descriptor)
        for file in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: file) {
            guard chmod(file, 0o600) == 0 else {
                throw SignalServerError.storage("cannot make \(file) private (mode 0600)")
            }
        }
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
        migrator.registerMigration("v2: version log, witness state") { db in
            try db.execute(
                sql: """
                    CREATE TABLE log_leaf (
                        idx INTEGER PRIMARY KEY CHECK (idx >= 0),
                        entry BLOB NOT NULL CHECK (length(entry) BETWEEN 1 AND 1024),
                        leafHash BLOB NOT NULL CHECK (length(leafHash) = 32),
                        lineage BLOB CHECK (lineage IS NULL OR length(lineage) = 32),
                        device BLOB NOT NULL CHECK (length(device) = 32)
                    );
                    CREATE INDEX log_leaf_lineage ON log_leaf(lineage, idx) WHERE lineage IS NOT NULL;
                    CREATE INDEX log_leaf_device ON log_leaf(device, idx);
                    CREATE TRIGGER log_leaf_dense BEFORE INSERT ON log_leaf
                        WHEN NEW.idx != (SELECT IFNULL(MAX(idx) + 1, 0) FROM log_leaf)
                        BEGIN SELECT RAISE(ABORT, 'version log leaves are dense'); END;
                    CREATE TRIGGER log_leaf_no_update BEFORE UPDATE ON log_leaf
                        BEGIN SELECT RAISE(ABORT, 'the version log is append-only'); END;
                    CREATE TRIGGER log_leaf_no_delete BEFORE DELETE ON log_leaf
                        BEGIN SELECT RAISE(ABORT, 'the version log is append-only'); END;
                    CREATE TABLE lineage_head (
                        lineage BLOB PRIMARY KEY CHECK (length(lineage) = 32),
                        version INTEGER NOT NULL CHECK (version >= 1),
                        chainHash BLOB NOT NULL CHECK (length(chainHash) = 32),
                        leafIndex INTEGER NOT NULL REFERENCES log_leaf(idx)
                    ) WITHOUT ROWID;
                    CREATE TABLE enrollment (
                        device BLOB NOT NULL CHECK (length(device) = 32),
                        user TEXT NOT NULL,
                        enrolled BOOLEAN NOT NULL,
                        leafIndex INTEGER NOT NULL REFERENCES log_leaf(idx),
                        PRIMARY KEY (device, user)
                    ) WITHOUT ROWID;
                    CREATE TABLE log_checkpoint (
                        size INTEGER PRIMARY KEY CHECK (size >= 0),
                        note TEXT NOT NULL,
                        publishedAt INTEGER NOT NULL
                    );
                    CREATE TABLE witness_state (
                        origin TEXT PRIMARY KEY,
                        size INTEGER NOT NULL CHECK (size >= 0),
                        rootHash BLOB NOT NULL CHECK (length(rootHash) = 32)
                    ) WITHOUT ROWID;
                    """)
        }
        return migrator
    }

    /// The end of the address's ban, if it is banned now.
    func bannedUntil(_ address: String, now: Date = Date()) -> Date? {
        memory.withLock { memory in
            guard let until = memory.bans[address] else { return nil }
            if until > now { return until }
            memory.bans[address] = nil
            return nil
        }
    }

    var activeBanCount: Int {
        let now = Date()
        return memory.withLock { memory in memory.bans.values.count { $0 > now } }
    }

    /// Counts one failure for `address` and says what to do; the decision is made before the database
    /// write starts, so every later check sees it.
    func recordFailure(_ address: String, reason: SignalErrorCode, now: Date = Date()) async throws -> Verdict {
        let timestamp = now.timeIntervalSince1970
        let (count, until) = memory.withLock { memory -> (Int, Double?) in
            var failures = Failures(count: 1, lastAt: timestamp)
            if let previous = memory.failures[address], timestamp - previous.lastAt < failureWindow {
                failures.count = previous.count + 1
            }
            var until: Double?
            if failures.count >= banThreshold {
                until = timestamp + banDuration
                failures.lastAt = timestamp + banDuration
                memory.bans[address] = Date(timeIntervalSince1970: timestamp + banDuration)
            }
            memory.failures[address] = failures
            return (failures.count, until)
        }
        pruneIfLarge(now: timestamp)
        let lastAt = until ?? timestamp
        try await pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO failure(address, count, firstAt, lastAt) VALUES (?, ?, ?, ?)
                    ON CONFLICT(address) DO UPDATE SET
                        count = CASE WHEN excluded.count = 1 THEN 1 ELSE MAX(count, excluded.count) END,
                        lastAt = CASE WHEN excluded.count = 1 THEN excluded.lastAt ELSE MAX(lastAt, excluded.lastAt) END,
                        firstAt = CASE WHEN excluded.count = 1 THEN excluded.firstAt ELSE firstAt END
                    """,
                arguments: [address, count, timestamp, lastAt])
            if let until {
                try db.execute(
                    sql: """
                        INSERT INTO ban(address, until, reason, createdAt) VALUES (?, ?, ?, ?)
                        ON CONFLICT(address) DO UPDATE SET until = excluded.until, reason = excluded.reason,
                            createdAt = excluded.createdAt
                        """,
                    arguments: [address, until, reason.rawValue, timestamp])
            }
        }
        if let until { return .banned(until: Date(timeIntervalSince1970: until)) }
        if count >= delayThreshold { return .delayThenRefuse(failureDelay) }
        return .refuse
    }

    /// Drops expired bans and counts from memory once it holds many addresses, so a spread-out attack cannot grow
    /// it without bound (an address whose window has passed starts from zero anyway).
    private func pruneIfLarge(now: Double) {
        let limit = pruneAbove.load(ordering: .relaxed)
        let size = memory.withLock { memory -> Int in
            guard memory.failures.count + memory.bans.count > limit else { return 0 }
            memory.failures = memory.failures.filter { now - $0.value.lastAt < failureWindow }
            memory.bans = memory.bans.filter { $0.value.timeIntervalSince1970 > now }
            return memory.failures.count + memory.bans.count
        }
        if size > 0 { pruneAbove.store(max(4096, size * 2), ordering: .relaxed) }
    }

    /// Addresses with a failure count or a ban in memory (for tests).
    var trackedAddresses: Int {
        memory.withLock { Set($0.failures.keys).union($0.bans.keys).count }
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
