public import SwarmKit
internal import Synchronization

/// The progress of the files being transferred, shared by the transfers and the printer.
public final class ProgressBoard: Sendable {
    /// One file's progress.
    public struct Entry: Sendable {
        public var size: Int64
        public var have: Int64 = 0
        public var fromPeers: Int64 = 0
        public var fromServer: Int64 = 0
        public var peers = 0
        public var rate: Double = 0
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var order: [String] = []
    }

    private let state = Mutex(State())

    public init() {}

    /// A transfer of `path` (of `size` bytes) began.
    public func begin(_ path: String, size: Int64) {
        state.withLock { s in
            if s.entries[path] == nil { s.order.append(path) }
            s.entries[path] = Entry(size: size)
        }
    }

    /// The transfer of `path` ended.
    public func end(_ path: String) {
        state.withLock { s in
            s.entries[path] = nil
            s.order.removeAll { $0 == path }
        }
    }

    /// Bytes that came from the server alone (server-only downloads).
    public func add(_ path: String, server bytes: Int64) {
        state.withLock { s in
            s.entries[path]?.have += bytes
            s.entries[path]?.fromServer += bytes
        }
    }

    /// The figures of the swarm that fetches `path`.
    public func update(_ path: String, snapshot: Swarm.Snapshot) {
        state.withLock { s in
            guard var entry = s.entries[path] else { return }
            entry.have = snapshot.bytesHave
            entry.fromPeers = snapshot.bytesFromPeers
            entry.fromServer = snapshot.bytesFromServer
            entry.peers = snapshot.peers
            entry.rate = snapshot.downloadRate
            s.entries[path] = entry
        }
    }

    /// The active transfers, in the order they started.
    public var active: [(path: String, entry: Entry)] {
        state.withLock { s in s.order.compactMap { path in s.entries[path].map { (path, $0) } } }
    }
}
