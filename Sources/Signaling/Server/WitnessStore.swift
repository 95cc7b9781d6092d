import ChunkStore
import Foundation
internal import GRDB
import Logging
import VersionLog

/// This server as a C2SP witness of the other logs of its federation (`POST /add-checkpoint`, c2sp.org/tlog-witness).
///
/// The decision is the library's `Witness` state machine; this type gives it the state of the origin from the
/// `witness_state` table and stores the new state in the same write transaction as the decision, before the answer
/// is sent: two requests for one origin are serialized by the database's single writer, so the spec's race (two
/// checkpoints of one size cosigned at once) cannot happen, and a restart forgets nothing it cosigned.
final class WitnessStore: Sendable {
    /// The witness's cosigning key.
    let key: NoteSigningKey
    /// The log keys this witness trusts (the federation's servers' log keys; each key's name is its origin).
    let logKeys: [NoteVerifierKey]
    private let pool: DatabasePool

    init(pool: DatabasePool, key: NoteSigningKey, logKeys: [NoteVerifierKey]) {
        self.pool = pool
        self.key = key
        self.logKeys = logKeys
    }

    /// Handles one `add-checkpoint` body at `now` (unix seconds).
    func addCheckpoint(body: String, now: UInt64) async throws -> AddCheckpointResponse {
        let request: AddCheckpointRequest
        let origin: String
        do {
            request = try AddCheckpointRequest(body: body)
            origin = try Checkpoint(text: request.checkpoint.text).origin
        } catch {
            return .badRequest("malformed add-checkpoint body: \(error)")
        }
        let key = self.key
        let logKeys = self.logKeys
        return try await pool.write { db -> AddCheckpointResponse in
            var states: [String: Witness.LogState] = [:]
            if let row = try Row.fetchOne(
                db, sql: "SELECT size, rootHash FROM witness_state WHERE origin = ?", arguments: [origin]),
                let root = Hash256(bytes: row["rootHash"] as Data)
            {
                states[origin] = Witness.LogState(size: UInt64(row["size"] as Int64), rootHash: root)
            }
            var witness = Witness(key: key, logKeys: logKeys, states: states)
            let response = witness.addCheckpoint(request, now: now)
            if case .cosigned = response, let state = witness.states[origin] {
                try db.execute(
                    sql: """
                        INSERT INTO witness_state(origin, size, rootHash) VALUES (?, ?, ?)
                        ON CONFLICT(origin) DO UPDATE SET size = excluded.size, rootHash = excluded.rootHash
                        """,
                    arguments: [origin, Int64(clamping: state.size), Data(state.rootHash.bytes)])
            }
            return response
        }
    }

    /// The size this witness last cosigned for `origin` (0 if none).
    func cosignedSize(origin: String) async throws -> UInt64 {
        try await pool.read { db in
            UInt64(
                try Int64.fetchOne(db, sql: "SELECT size FROM witness_state WHERE origin = ?", arguments: [origin]) ?? 0
            )
        }
    }
}
