import Foundation
import HarpClient

/// What `get` prints while it works.
///
/// On a terminal: a live line per active file and a total line (bytes, rate, ETA, peers, share from peers versus the
/// server), redrawn in place at most four times a second, with results printed above them. Not on a terminal: a plain
/// progress line per active file every 10 seconds. With `--json`: `progress` objects every half second. With
/// `--quiet`: nothing (errors still go to standard error).
final class LiveProgress: @unchecked Sendable {
    enum Mode { case terminal, plain, json, quiet }

    let mode: Mode
    private let board: ProgressBoard
    private let lock = NSLock()
    private var drawnLines = 0
    private var rates: [String: (bytes: Int64, time: Double, rate: Double)] = [:]
    private var totalFiles = 0
    private var doneFiles = 0
    private var doneBytes: Int64 = 0
    private var peerBytes: Int64 = 0
    private var serverBytes: Int64 = 0
    private let started = Date()

    /// The open peer connections and their paths (direct, mapped, punched, relayed), for the JSON lines.
    private let links: @Sendable () -> [PeerLink]

    init(board: ProgressBoard, json: Bool, quiet: Bool, links: @escaping @Sendable () -> [PeerLink] = { [] }) {
        self.board = board
        self.links = links
        if quiet {
            mode = .quiet
        } else if json {
            mode = .json
        } else {
            mode = isatty(STDOUT_FILENO) == 1 ? .terminal : .plain
        }
    }

    /// How often `tick` should run.
    var interval: Duration {
        switch mode {
        case .terminal: .milliseconds(250)
        case .json: .milliseconds(500)
        case .plain: .seconds(10)
        case .quiet: .seconds(3600)
        }
    }

    func setTotal(files: Int) { lock.withLock { totalFiles = files } }

    /// A file finished: counted in the total line.
    func fileDone(bytes: Int64, fromPeers: Int64, fromServer: Int64) {
        lock.withLock {
            doneFiles += 1
            doneBytes += bytes
            peerBytes += fromPeers
            serverBytes += fromServer
        }
    }

    /// Prints a permanent line (a result), above the live lines on a terminal.
    func say(_ text: String) {
        guard mode != .quiet else { return }
        lock.withLock {
            clearLocked()
            print(text)
            if mode == .terminal { drawLocked() }
        }
    }

    /// Redraws (terminal), or prints progress (plain, JSON).
    func tick() {
        lock.withLock {
            switch mode {
            case .quiet: return
            case .json:
                let connections = Self.connections(links())
                for (path, entry) in board.active {
                    printJSONLine([
                        "event": "progress", "path": path, "bytes": entry.have, "size": entry.size,
                        "bytesFromPeers": entry.fromPeers, "bytesFromServer": entry.fromServer, "peers": entry.peers,
                        "rate": Int64(rate(path, entry.have)), "connections": connections,
                    ])
                }
            case .plain:
                for (path, entry) in board.active { print(fileLine(path, entry)) }
            case .terminal:
                clearLocked()
                drawLocked()
            }
        }
    }

    /// The peer connections as JSON: `{"peer": first 8 bytes of the device key in hex, "connection": "direct",
    /// "channel": 0}`, at most 64; a swarm carried by a connection made for another swarm of the same peer has a
    /// channel above 0.
    static func connections(_ links: [PeerLink]) -> [[String: Any]] {
        links.prefix(64).map { link in
            var entry: [String: Any] = [
                "peer": link.shortDevice, "connection": link.path.rawValue, "channel": Int(link.channel),
            ]
            if let reason = link.reason { entry["why"] = reason }
            return entry
        }
    }

    /// Removes the live lines (before the final summary).
    func finish() {
        lock.withLock { clearLocked() }
    }

    // MARK: Drawing (lock held)

    private func clearLocked() {
        guard mode == .terminal, drawnLines > 0 else { return }
        var text = ""
        for _ in 0..<drawnLines { text += "\u{1B}[1A\u{1B}[2K" }
        FileHandle.standardOutput.write(Data(text.utf8))
        drawnLines = 0
    }

    private func drawLocked() {
        let active = board.active
        var lines = active.prefix(8).map { fileLine($0.path, $0.entry) }
        if active.count > 8 { lines.append("  … and \(active.count - 8) more") }
        let activeBytes = active.reduce(Int64(0)) { $0 + $1.entry.have }
        let activePeers = active.reduce(Int64(0)) { $0 + $1.entry.fromPeers }
        let activeServer = active.reduce(Int64(0)) { $0 + $1.entry.fromServer }
        let totalRate = active.reduce(0.0) { $0 + (rates[$1.path]?.rate ?? 0) }
        let fromPeers = peerBytes + activePeers
        let fromServer = serverBytes + activeServer
        let share = fromPeers + fromServer > 0 ? Double(fromPeers) * 100 / Double(fromPeers + fromServer) : 0
        lines.append(
            "total: \(doneFiles)/\(totalFiles) files, \(formatBytes(doneBytes + activeBytes)), "
                + "\(formatBytes(Int64(totalRate)))/s, \(String(format: "%.0f", share))% from peers")
        let text = lines.map { String($0.prefix(terminalWidth - 1)) + "\n" }.joined()
        FileHandle.standardOutput.write(Data(text.utf8))
        drawnLines = lines.count
    }

    private func fileLine(_ path: String, _ entry: ProgressBoard.Entry) -> String {
        let percent = entry.size > 0 ? Double(entry.have) * 100 / Double(entry.size) : 100
        let speed = rate(path, entry.have)
        let eta = speed > 1 ? formatDuration(Double(entry.size - entry.have) / speed) : "--"
        let sources = entry.fromPeers + entry.fromServer
        let share = sources > 0 ? Double(entry.fromPeers) * 100 / Double(sources) : 0
        let name = path.count > 40 ? "…" + path.suffix(39) : path
        return "\(name)  \(String(format: "%3.0f", percent))%  \(formatBytes(entry.have))/\(formatBytes(entry.size))  "
            + "\(formatBytes(Int64(speed)))/s  ETA \(eta)  \(entry.peers) peers  "
            + "\(String(format: "%.0f", share))% from peers"
    }

    /// Bytes per second of one file, smoothed over the ticks.
    private func rate(_ path: String, _ bytes: Int64) -> Double {
        let now = Date().timeIntervalSince(started)
        guard let previous = rates[path] else {
            rates[path] = (bytes, now, 0)
            return 0
        }
        let elapsed = now - previous.time
        guard elapsed >= 0.2 else { return previous.rate }
        let sample = Double(bytes - previous.bytes) / elapsed
        let smoothed = previous.rate == 0 ? sample : 0.7 * previous.rate + 0.3 * sample
        rates[path] = (bytes, now, max(smoothed, 0))
        return max(smoothed, 0)
    }

    private var terminalWidth: Int {
        var size = winsize()
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 20 { return Int(size.ws_col) }
        return 100
    }
}

/// 75 → "1m15s".
func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "--" }
    let total = Int(seconds.rounded())
    if total < 60 { return "\(total)s" }
    if total < 3600 { return "\(total / 60)m\(String(format: "%02d", total % 60))s" }
    return "\(total / 3600)h\(String(format: "%02d", total % 3600 / 60))m"
}
