import Foundation

/// A process's resident memory and CPU time, read from /proc (Linux).
struct ProcStats: Sendable {
    var rssKiB: Int
    /// User plus system CPU time, in clock ticks.
    var cpuTicks: Int
    var at: ContinuousClock.Instant

    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    static func read(pid: Int32) -> ProcStats? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let rssLine = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let rss = Int(rssLine.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? ""),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let utime = Int(fields[11]), let stime = Int(fields[12]) else { return nil }
        return ProcStats(rssKiB: rss, cpuTicks: utime + stime, at: .now)
    }

    /// Cores used between two readings (1.0 = one core busy all the time).
    static func cores(from start: ProcStats, to end: ProcStats) -> Double {
        let seconds = (end.at - start.at).components
        let wall = Double(seconds.seconds) + Double(seconds.attoseconds) / 1e18
        guard wall > 0 else { return 0 }
        return Double(end.cpuTicks - start.cpuTicks) / ticksPerSecond / wall
    }
}
