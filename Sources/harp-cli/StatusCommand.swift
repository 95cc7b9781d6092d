import ArgumentParser
import ChunkStore
import Foundation
import HarpClient

/// Where running harp processes describe themselves: `$XDG_STATE_HOME/harp/status`, else
/// `~/.local/state/harp/status`; one `<pid>.json` per process, rewritten every second, removed at exit.
enum StatusFiles {
    static var directory: String {
        BaseDirectories.stateHome() + "/harp/status"
    }
}

/// Writes this process's status file once a second while a command runs.
actor StatusWriter {
    let command: String
    let node: SwarmNode
    let board: ProgressBoard
    private var task: Task<Void, Never>?
    private let path = StatusFiles.directory + "/\(getpid()).json"
    private let started = Date()

    init(command: String, node: SwarmNode, board: ProgressBoard) {
        self.command = command
        self.node = node
        self.board = board
    }

    func start() {
        try? FileManager.default.createDirectory(
            atPath: StatusFiles.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        task = Task {
            while !Task.isCancelled {
                await self.write()
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    func stop() {
        task?.cancel()
        task = nil
        try? FileManager.default.removeItem(atPath: path)
    }

    private func write() async {
        let totals = await node.totals()
        let reachability = await node.reachability()
        let fetching: [[String: Any]] = board.active.map { path, entry in
            [
                "path": path, "bytes": entry.have, "size": entry.size, "peers": entry.peers,
                "bytesFromPeers": entry.fromPeers, "bytesFromServer": entry.fromServer, "rate": Int64(entry.rate),
            ]
        }
        let object: [String: Any] = [
            "pid": Int(getpid()), "command": command, "started": Int(started.timeIntervalSince1970),
            "updated": Int(Date().timeIntervalSince1970), "fetching": fetching, "swarms": totals.swarms,
            "peers": totals.peers, "bytesUploaded": totals.bytesUploaded, "uploadRate": Int64(totals.uploadRate),
            "downloadRate": Int64(totals.downloadRate), "connections": LiveProgress.connections(node.peerLinks),
            "reachability": reachability.json,
        ]
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        let temporary = path + ".tmp"
        if FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]) {
            rename(temporary, path)
        }
    }
}

/// `harp-cli status`: what this machine is fetching and seeding.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract:
            "Show what this machine's harp processes are fetching and seeding, their peers and rates, and the store.",
        discussion: """
            Every running get, put and seed describes itself once a second in a status file \
            ($XDG_STATE_HOME/harp/status/<pid>.json, else ~/.local/state/harp/status); status reads them, skipping \
            those of processes that are gone, and adds the size of the chunk store.

            Examples:
              harp-cli status
              harp-cli status --json | jq '.processes[].fetching'
            """)

    @OptionGroup var storeOptions: StoreOptions
    @OptionGroup var config: ConfigOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await runReportingErrors {
            var processes: [[String: Any]] = []
            let directory = StatusFiles.directory
            for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            where name.hasSuffix(".json") {
                guard let pid = Int32(name.dropLast(5)) else { continue }
                let path = directory + "/" + name
                guard kill(pid, 0) == 0 || errno == EPERM else {
                    try? FileManager.default.removeItem(atPath: path)  // a process that is gone
                    continue
                }
                guard let data = FileManager.default.contents(atPath: path),
                    let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
                else { continue }
                processes.append(object)
            }
            processes.sort { ($0["pid"] as? Int ?? 0) < ($1["pid"] as? Int ?? 0) }
            let storePath = storeOptions.resolvedPath(config: try config.harpConfig())
            var store: [String: Any] = ["path": storePath]
            if FileManager.default.fileExists(atPath: storePath) {
                let statistics = try ChunkStore(path: storePath).statistics()
                let size = ["", "-wal", "-shm"].reduce(Int64(0)) { total, suffix in
                    let attributes = try? FileManager.default.attributesOfItem(atPath: storePath + suffix)
                    return total + ((attributes?[.size] as? NSNumber)?.int64Value ?? 0)
                }
                store["files"] = statistics.files
                store["versions"] = statistics.versions
                store["chunks"] = statistics.chunks
                store["indexedBytes"] = statistics.indexedBytes
                store["downloads"] = statistics.downloads
                store["databaseBytes"] = size
            }
            if output.json {
                printJSONLine(["processes": processes, "store": store])
                return
            }
            if processes.isEmpty { print("no harp process is fetching or seeding") }
            for process in processes {
                let fetching = process["fetching"] as? [[String: Any]] ?? []
                print(
                    "pid \(process["pid"] ?? "?") \(process["command"] ?? "?"): \(fetching.count) fetching, "
                        + "\(process["swarms"] ?? 0) swarm(s), \(process["peers"] ?? 0) peers, "
                        + "down \(formatBytes(number(process["downloadRate"])))/s, "
                        + "up \(formatBytes(number(process["uploadRate"])))/s, "
                        + "sent \(formatBytes(number(process["bytesUploaded"]))) to peers")
                if let summary = (process["reachability"] as? [String: Any]).flatMap(Reachability.summary) {
                    print("  reachability: " + summary)
                }
                let connections = process["connections"] as? [[String: Any]] ?? []
                if !connections.isEmpty {
                    let paths = connections.map { connection in
                        let why = (connection["why"] as? String).map { " (\($0))" } ?? ""
                        return "\(connection["peer"] ?? "?") \(connection["connection"] ?? "?")\(why)"
                    }
                    print("  peers: " + paths.joined(separator: ", "))
                }
                for file in fetching {
                    let size = number(file["size"])
                    let percent = size > 0 ? Double(number(file["bytes"])) * 100 / Double(size) : 100
                    print(
                        "  \(file["path"] ?? "?"): \(String(format: "%.0f", percent))% of \(formatBytes(size)), "
                            + "\(file["peers"] ?? 0) peers")
                }
            }
            if store["files"] != nil {
                print(
                    "store \(storePath): \(store["files"] ?? 0) files, \(store["chunks"] ?? 0) chunks, "
                        + "\(formatBytes(number(store["indexedBytes"]))) indexed, "
                        + "database \(formatBytes(number(store["databaseBytes"])))")
            } else {
                print("store \(storePath): none yet")
            }
        }
    }

    private func number(_ value: Any?) -> Int64 { (value as? NSNumber)?.int64Value ?? 0 }
}
