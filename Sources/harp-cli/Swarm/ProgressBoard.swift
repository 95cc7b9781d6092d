import Foundation
import SwarmKit

/// The progress of the files being transferred, shared by the transfers and the printer.
final class ProgressBoard: @unchecked Sendable {
    struct Entry {
        var size: Int64
        var have: Int64 = 0
        var fromPeers: Int64 = 0
        var fromServer: Int64 = 0
        var peers = 0
        var rate: Double = 0
    }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private var order: [String] = []

    func begin(_ path: String, size: Int64) {
        lock.withLock {
            if entries[path] == nil { order.append(path) }
            entries[path] = Entry(size: size)
        }
    }

    func end(_ path: String) {
        lock.withLock {
            entries[path] = nil
            order.removeAll { $0 == path }
        }
    }

    /// Bytes that came from the server alone (server-only downloads).
    func add(_ path: String, server bytes: Int64) {
        lock.withLock {
            entries[path]?.have += bytes
            entries[path]?.fromServer += bytes
        }
    }

    func update(_ path: String, snapshot: Swarm.Snapshot) {
        lock.withLock {
            guard var entry = entries[path] else { return }
            entry.have = snapshot.bytesHave
            entry.fromPeers = snapshot.bytesFromPeers
            entry.fromServer = snapshot.bytesFromServer
            entry.peers = snapshot.peers
            entry.rate = snapshot.downloadRate
            entries[path] = entry
        }
    }

    /// The active transfers, in the order they started.
    var active: [(path: String, entry: Entry)] {
        lock.withLock { order.compactMap { path in entries[path].map { (path, $0) } } }
    }
}
