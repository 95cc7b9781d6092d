import ChunkStore
import Foundation
internal import GRDB
import Synchronization
import VersionLog

/// The server's version log (docs/proofs.md): one append-only table of leaves in the server's SQLite database, the
/// head of every lineage, the device enrollments in force, and the checkpoints published once a quorum of witnesses
/// cosigned them. An RFC 6962 `Merkle.Tree` over the leaves is rebuilt from the table at start and kept in memory.
///
/// The database keeps the invariants: leaves are dense (`idx` is the number of leaves before it), never updated and
/// never deleted (triggers). Each append is one transaction that checks the lineage head (compare-and-swap), inserts
/// the leaf and moves the head; the tree takes the leaf only once that transaction has committed, in commit order
/// (GRDB runs the commit hook on its serial writer queue), so the tree never holds a leaf the table lost. The
/// database runs with `synchronous = FULL`: an append acknowledged to a client survives a crash of the process and of
/// the machine.
final class LogStore: Sendable {
    /// The lineage head a client signed against, or the one it should sign against now.
    struct Head: Equatable, Sendable {
        var version: UInt64
        var chainHash: Hash256
        var leafIndex: Int
        /// The head's encoded entry.
        var entry: [UInt8]
    }

    /// What an append did.
    enum AppendResult: Equatable, Sendable {
        /// Appended at this leaf.
        case appended(leafIndex: Int)
        /// The lineage head is not the one the client expected (it lost a race or is stale): the current head, nil
        /// for a lineage without versions. The client signs its version again on top of it.
        case conflict(current: Head?)
    }

    /// Why an append was refused (each a client error; the log is unchanged).
    enum AppendError: Error, Equatable, Sendable, CustomStringConvertible {
        case malformed(String)
        /// Only version entries come from clients; enrollments are made by the server.
        case notAVersion
        case badSignature
        /// The entry's time is further than the allowed skew from the server's clock.
        case clockSkew(entryTime: Int64, serverTime: Int64)
        /// The version does not follow the head it claims: number or previous hash wrong.
        case outOfOrder(String)
        /// The author device is not enrolled for the author user (never, or revoked).
        case notEnrolled

        var description: String {
            switch self {
            case .malformed(let reason): "malformed entry: \(reason)"
            case .notAVersion: "only version entries may be appended by clients"
            case .badSignature: "the author signature does not verify"
            case .clockSkew(let entry, let server):
                "the entry's time \(entry) is too far from the server's time \(server)"
            case .outOfOrder(let reason): "the version does not follow its head: \(reason)"
            case .notEnrolled: "the author device is not enrolled for the author user"
            }
        }
    }

    private let pool: DatabasePool
    private let tree: Mutex<Merkle.Tree>
    /// The log key: its name is the origin; it signs checkpoints and attests enrollments.
    let key: NoteSigningKey
    /// How far an entry's time may be from the server's clock, seconds.
    let maxClockSkew: Int64

    /// Opens the log in `pool` (migrated by ``AbuseStore/migrator``) and rebuilds its tree from the leaf table.
    init(pool: DatabasePool, key: NoteSigningKey, maxClockSkew: Int64 = 300) throws {
        self.pool = pool
        self.key = key
        self.maxClockSkew = maxClockSkew
        tree = Mutex(try Self.loadTree(pool))
    }

    /// Rebuilds the tree from the table (another process, `harp-cli signal enroll`, may have appended before the
    /// server started to run).
    func reload() throws {
        let loaded = try Self.loadTree(pool)
        tree.withLock { $0 = loaded }
    }

    private static func loadTree(_ pool: DatabasePool) throws -> Merkle.Tree {
        let hashes = try pool.read { db in
            try Data.fetchAll(db, sql: "SELECT leafHash FROM log_leaf ORDER BY idx").map { data in
                guard let hash = Hash256(bytes: data) else {
                    throw SignalServerError.storage("a leaf hash in the version log is not 32 bytes")
                }
                return hash
            }
        }
        return Merkle.Tree(leafHashes: hashes)
    }

    /// The log's origin (the log key's name).
    var origin: String { key.verifierKey.name }

    /// The number of leaves the tree holds (every committed append).
    var size: Int { tree.withLock { $0.count } }

    /// Appends a client's version entry (its canonical encoding) if `expectedHead` (the chain hash of the lineage head
    /// the client signed against, `Hash256.zero` for a new lineage) is the head now.
    func append(encoded: [UInt8], expectedHead: Hash256, now: Int64) async throws -> AppendResult {
        let decoded: LogEntry
        do {
            decoded = try LogEntry(encoded: encoded)
        } catch {
            throw AppendError.malformed("\(error)")
        }
        guard case .version(let entry) = decoded else { throw AppendError.notAVersion }
        guard entry.chainHash == entry.computedChainHash else { throw AppendError.malformed("h_n does not recompute") }
        guard entry.hasValidSignature else { throw AppendError.badSignature }
        let (low, lowOverflow) = now.subtractingReportingOverflow(maxClockSkew)
        let (high, highOverflow) = now.addingReportingOverflow(maxClockSkew)
        guard !lowOverflow, !highOverflow, entry.time >= low, entry.time <= high else {
            throw AppendError.clockSkew(entryTime: entry.time, serverTime: now)
        }
        let leafHash = Merkle.leafHash(encoded)
        return try await pool.write { db -> AppendResult in
            let head = try Self.head(db, lineage: entry.lineage)
            guard (head?.chainHash ?? .zero) == expectedHead else { return .conflict(current: head) }
            guard entry.version == (head?.version ?? 0) + 1 else {
                throw AppendError.outOfOrder("version \(entry.version) after \(head?.version ?? 0)")
            }
            guard entry.previousHash == (head?.chainHash ?? .zero) else {
                throw AppendError.outOfOrder("the previous hash is not the head's chain hash")
            }
            let enrolled = try Bool.fetchOne(
                db, sql: "SELECT enrolled FROM enrollment WHERE device = ? AND user = ?",
                arguments: [Data(entry.authorDevice.bytes), entry.authorUser])
            guard enrolled == true else { throw AppendError.notEnrolled }
            let index = try Self.insertLeaf(
                db, encoded: encoded, leafHash: leafHash, lineage: entry.lineage, device: entry.authorDevice)
            try db.execute(
                sql: """
                    INSERT INTO lineage_head(lineage, version, chainHash, leafIndex) VALUES (?, ?, ?, ?)
                    ON CONFLICT(lineage) DO UPDATE SET version = excluded.version, chainHash = excluded.chainHash,
                        leafIndex = excluded.leafIndex
                    """,
                arguments: [
                    Data(entry.lineage.bytes), Int64(clamping: entry.version), Data(entry.chainHash.bytes), index,
                ])
            db.afterNextTransaction(onCommit: { _ in self.tree.withLock { _ = $0.append(leafHash: leafHash) } })
            return .appended(leafIndex: index)
        }
    }

    /// Appends an enrollment (or revocation) of `device` for `user`, attested by the log key; returns its leaf.
    /// Server-side only: the share-based exchange that proves the device's user (issue 16) calls it, as do the
    /// operator's `harp-cli signal enroll` and tests.
    @discardableResult
    func appendEnrollment(
        _ action: EnrollmentEntry.Action, device: DeviceKey, user: String, now: Int64
    ) async throws
        -> Int
    {
        let entry = try EnrollmentEntry.attested(action, device: device, user: user, time: now, logKey: key)
        let encoded = LogEntry.enrollment(entry).encoded
        let leafHash = Merkle.leafHash(encoded)
        return try await pool.write { db -> Int in
            let index = try Self.insertLeaf(db, encoded: encoded, leafHash: leafHash, lineage: nil, device: device)
            try db.execute(
                sql: """
                    INSERT INTO enrollment(device, user, enrolled, leafIndex) VALUES (?, ?, ?, ?)
                    ON CONFLICT(device, user) DO UPDATE SET enrolled = excluded.enrolled,
                        leafIndex = excluded.leafIndex
                    """,
                arguments: [Data(device.bytes), user, action == .enroll, index])
            db.afterNextTransaction(onCommit: { _ in self.tree.withLock { _ = $0.append(leafHash: leafHash) } })
            return index
        }
    }

    private static func insertLeaf(
        _ db: Database, encoded: [UInt8], leafHash: Hash256, lineage: Hash256?, device: DeviceKey
    ) throws -> Int {
        let index = try Int.fetchOne(db, sql: "SELECT IFNULL(MAX(idx) + 1, 0) FROM log_leaf") ?? 0
        try db.execute(
            sql: "INSERT INTO log_leaf(idx, entry, leafHash, lineage, device) VALUES (?, ?, ?, ?, ?)",
            arguments: [index, Data(encoded), Data(leafHash.bytes), lineage.map { Data($0.bytes) }, Data(device.bytes)])
        return index
    }

    private static func head(_ db: Database, lineage: Hash256) throws -> Head? {
        guard
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT h.version, h.chainHash, h.leafIndex, l.entry FROM lineage_head h
                    JOIN log_leaf l ON l.idx = h.leafIndex WHERE h.lineage = ?
                    """,
                arguments: [Data(lineage.bytes)])
        else { return nil }
        let version: Int64 = row["version"]
        let chainHash: Data = row["chainHash"]
        let entry: Data = row["entry"]
        guard let hash = Hash256(bytes: chainHash) else {
            throw SignalServerError.storage("a chain hash in the version log is not 32 bytes")
        }
        return Head(version: UInt64(version), chainHash: hash, leafIndex: row["leafIndex"], entry: Array(entry))
    }

    /// The head of `lineage`, nil if it has no version.
    func head(of lineage: Hash256) async throws -> Head? {
        try await pool.read { db in try Self.head(db, lineage: lineage) }
    }

    /// The encoded entry at `index`.
    func entry(at index: Int) async throws -> [UInt8]? {
        try await pool.read { db in
            try Data.fetchOne(db, sql: "SELECT entry FROM log_leaf WHERE idx = ?", arguments: [index]).map { Array($0) }
        }
    }

    /// The checkpoint of the first `size` leaves (all of them by default), signed by the log key.
    func signedCheckpoint(size: Int? = nil) -> (checkpoint: Checkpoint, note: SignedNote) {
        let (size, root) = tree.withLock { tree in
            let size = min(size ?? tree.count, tree.count)
            return (size, tree.root(size: size))
        }
        let checkpoint = Checkpoint(origin: origin, size: UInt64(size), rootHash: root)
        return (checkpoint, checkpoint.signed(by: key))
    }

    /// The consistency proof between two sizes of the tree.
    func consistencyProof(oldSize: Int, newSize: Int) -> [Hash256]? {
        tree.withLock { $0.consistencyProof(oldSize: oldSize, newSize: newSize) }
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves.
    func inclusionProof(index: Int, size: Int) -> [Hash256]? {
        tree.withLock { $0.inclusionProof(index: index, size: size) }
    }
}

extension LogStore {
    /// A checkpoint the log published: signed by the log key and cosigned by a quorum of its witnesses.
    struct Published: Equatable, Sendable {
        var size: Int
        var note: SignedNote
    }

    /// Records a published checkpoint (a size already published keeps its first note).
    func publish(_ published: Published, now: Int64) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "INSERT INTO log_checkpoint(size, note, publishedAt) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                arguments: [published.size, published.note.formatted, now])
        }
    }

    /// The newest published checkpoint.
    func latestPublished() async throws -> Published? {
        try await pool.read { db in
            try Self.published(db, sql: "SELECT size, note FROM log_checkpoint ORDER BY size DESC LIMIT 1", [])
        }
    }

    private static func published(_ db: Database, sql: String, _ arguments: StatementArguments) throws -> Published? {
        guard let row = try Row.fetchOne(db, sql: sql, arguments: arguments) else { return nil }
        let note = try SignedNote(parsing: row["note"] as String)
        return Published(size: row["size"], note: note)
    }

    /// The proof bundle of `lineage` against the newest published checkpoint (nil if none is published or the
    /// lineage has no version in it), with the first published checkpoint holding its head. At most
    /// `maximumVersions` versions are served (the bundle's decoding limit).
    func proofBundle(
        lineage: Hash256, maximumVersions: Int = ProofBundle.Limits().maximumEntries
    ) async throws
        -> ProofBundle?
    {
        typealias Leaf = (index: Int, entry: [UInt8])
        @Sendable func leaves(_ rows: [Row]) -> [Leaf] { rows.map { ($0["idx"], Array($0["entry"] as Data)) } }
        let rows = try await pool.read { db -> (Published, Published, [Leaf], [Leaf])? in
            guard
                let latest = try Self.published(
                    db, sql: "SELECT size, note FROM log_checkpoint ORDER BY size DESC LIMIT 1", [])
            else { return nil }
            let versions = leaves(
                try Row.fetchAll(
                    db, sql: "SELECT idx, entry FROM log_leaf WHERE lineage = ? AND idx < ? ORDER BY idx LIMIT ?",
                    arguments: [Data(lineage.bytes), latest.size, maximumVersions + 1]))
            guard let head = versions.last?.index, versions.count <= maximumVersions,
                let first = try Self.published(
                    db, sql: "SELECT size, note FROM log_checkpoint WHERE size > ? ORDER BY size LIMIT 1", [head])
            else { return nil }
            var devices: Set<Data> = []
            for leaf in versions {
                if case .version(let entry) = try? LogEntry(encoded: leaf.entry) {
                    devices.insert(Data(entry.authorDevice.bytes))
                }
            }
            var enrollments: [Leaf] = []
            for device in devices {
                enrollments += leaves(
                    try Row.fetchAll(
                        db,
                        sql: "SELECT idx, entry FROM log_leaf WHERE device = ? AND lineage IS NULL AND idx < ? LIMIT ?",
                        arguments: [device, latest.size, ProofBundle.Limits().maximumEnrollments]))
            }
            return (latest, first, versions, enrollments.sorted { $0.index < $1.index })
        }
        guard let (latest, first, versions, enrollmentLeaves) = rows,
            let consistency = consistencyProof(oldSize: first.size, newSize: latest.size)
        else { return nil }
        func proven(_ leaf: Leaf) -> ProofBundle.ProvenEntry? {
            guard let proof = inclusionProof(index: leaf.index, size: latest.size) else { return nil }
            return ProofBundle.ProvenEntry(leafIndex: UInt64(leaf.index), entry: leaf.entry, inclusionProof: proof)
        }
        let entries = versions.compactMap(proven)
        let enrollments = enrollmentLeaves.compactMap(proven)
        guard entries.count == versions.count, enrollments.count == enrollmentLeaves.count else { return nil }
        return ProofBundle(
            checkpoint: latest.note, entries: entries, enrollments: enrollments,
            firstWitnessed: ProofBundle.FirstWitnessed(checkpoint: first.note, consistencyProof: consistency))
    }
}
