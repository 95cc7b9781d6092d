import ArgumentParser
import Foundation
import HarpClient

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `harp-cli demo`: the main job end to end on this machine, with nothing to set up.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract:
            "Run a local swarm on loopback: DevCloud, a signaling server, a seeder and peers, as separate processes.",
        discussion: """
            The demo starts DevCloud (a small Nextcloud-compatible server whose upload to clients is limited, like a \
            real server's uplink) and a signaling server on loopback ports it picks, generates a file, and uploads it \
            with `put` from an author who then seeds it. First the peers fetch it from the server alone, all at once, \
            sharing the server's limit; then they fetch it through the swarm. Every copy is compared with the \
            original. It prints what each peer and the server sent, and the speed-up. Everything it started \
            is stopped and its folder removed at the end, also on Ctrl-C.

            Examples:
              harp-cli demo
              harp-cli demo --size 512 --peers 4 --server-limit 40M --json
            """)

    @Option(help: ArgumentHelp("Size of the generated file in MiB.", valueName: "mib"))
    var size = 256

    @Option(help: ArgumentHelp("Number of fetching peers.", valueName: "n"))
    var peers = 4

    @Option(
        name: .customLong("server-limit"),
        help: ArgumentHelp(
            "What DevCloud may send per second, like a server's uplink (K, M, G suffixes).", valueName: "rate"))
    var serverLimit = "64M"

    @Flag(name: .customLong("skip-server-alone"), help: "Skip the run from the server alone (no speed-up figure).")
    var skipServerAlone = false

    @Flag(help: "Keep the demo folder (its path is printed).")
    var keep = false

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard size >= 1, size <= 64 * 1024 else { throw ValidationError("--size must be 1 ... 65536 MiB") }
        guard peers >= 1, peers <= 32 else { throw ValidationError("--peers must be 1 ... 32") }
        guard PeerSettings.parseRate(serverLimit) != nil else {
            throw ValidationError("--server-limit must be a rate like 64M")
        }
    }

    func run() async throws {
        let demo = try Demo(
            bytes: Int64(size) << 20, peerCount: peers, serverLimit: PeerSettings.parseRate(serverLimit)!,
            json: output.json,
            keep: keep)
        let interrupt = Task {
            await waitForInterrupt()
            demo.cleanUp()
            printError("harp-cli demo: interrupted; everything it started was stopped")
            Foundation.exit(130)
        }
        defer { interrupt.cancel() }
        do {
            let ok = try await demo.run(serverAlone: !skipServerAlone)
            demo.cleanUp()
            if !ok { throw ExitCode(HarpExitCode.verificationFailure.rawValue) }
        } catch let error as ExitCode {
            throw error
        } catch {
            demo.cleanUp()
            printError("harp-cli demo: \(error)")
            throw ExitCode(HarpExitCode.failure.rawValue)
        }
    }
}

/// A child `harp-cli` process of the demo, with its output lines.
final class DemoChild: @unchecked Sendable {
    let name: String
    let process = Process()
    private let lock = NSLock()
    private var lines: [String] = []
    private var partial = Data()

    init(name: String, arguments: [String], environment: [String: String], directory: String) throws {
        self.name = name
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = arguments
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let logPath = directory + "/\(name).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        let pipe = Pipe()
        process.standardOutput = pipe
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
            } else {
                self?.append(data)
            }
        }
        try process.run()
    }

    private func append(_ data: Data) {
        lock.withLock {
            partial.append(data)
            while let newline = partial.firstIndex(of: UInt8(ascii: "\n")) {
                lines.append(String(decoding: partial[partial.startIndex..<newline], as: UTF8.self))
                partial.removeSubrange(partial.startIndex...newline)
            }
        }
    }

    var output: [String] { lock.withLock { lines } }

    var jsonLines: [[String: Any]] {
        output.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
    }

    /// Waits (polling) for a line that satisfies `predicate`, up to `timeout` seconds.
    func line(timeout: Double, _ predicate: (String) -> Bool) async -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let found = output.first(where: predicate) { return found }
            if !process.isRunning { return output.first(where: predicate) }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    /// Waits for the exit; returns the status.
    func wait() async -> Int32 {
        while process.isRunning { try? await Task.sleep(for: .milliseconds(50)) }
        try? await Task.sleep(for: .milliseconds(50))
        return process.terminationStatus
    }

    func stop(_ signal: Int32 = SIGTERM) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }
}

/// One run of the demo.
final class Demo: @unchecked Sendable {
    let bytes: Int64
    let peerCount: Int
    let serverLimit: Int
    let json: Bool
    let keep: Bool
    let directory: String
    private let lock = NSLock()
    private var children: [DemoChild] = []
    private var cleaned = false

    init(bytes: Int64, peerCount: Int, serverLimit: Int, json: Bool, keep: Bool) throws {
        self.bytes = bytes
        self.peerCount = peerCount
        self.serverLimit = serverLimit
        self.json = json
        self.keep = keep
        directory =
            FileManager.default.temporaryDirectory.appendingPathComponent(
                "harp-demo-\(UUID().uuidString.prefix(8))"
            ).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    private func say(_ text: String) {
        if !json { print(text) }
    }

    private func start(_ name: String, _ arguments: [String], environment: [String: String] = [:]) throws -> DemoChild {
        let home = directory + "/" + name
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        var merged = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HARP_") }
        merged["HARP_CONFIG_DIR"] = home + "/config"
        merged["HARP_STORE"] = home + "/store.sqlite"
        for (key, value) in environment { merged[key] = value }
        let child = try DemoChild(name: name, arguments: arguments, environment: merged, directory: home)
        lock.withLock { children.append(child) }
        return child
    }

    /// Stops every child and removes the folder (unless kept). Safe to call twice.
    func cleanUp() {
        let all = lock.withLock { () -> [DemoChild] in
            defer { cleaned = true }
            return cleaned ? [] : children
        }
        for child in all { child.stop(SIGTERM) }
        let deadline = Date().addingTimeInterval(3)
        while all.contains(where: { $0.process.isRunning }), Date() < deadline { usleep(20_000) }
        for child in all { child.stop(SIGKILL) }
        for child in all { child.process.waitUntilExit() }
        if keep {
            if !all.isEmpty { say("demo folder kept: \(directory)") }
        } else {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// DevCloud's count of bytes sent (its admin endpoint answers loopback callers only).
    private func stats(_ url: String) async throws -> Int64 {
        let (data, _) = try await URLSession.shared.data(from: URL(string: url + "/harp-devcloud/stats")!)
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        return (object?["bytesSent"] as? NSNumber)?.int64Value ?? 0
    }

    /// Runs the demo; returns whether every copy matched the original.
    func run(serverAlone: Bool) async throws -> Bool {
        let mib = bytes >> 20
        say(
            "harp demo: \(peerCount) peers fetch a \(mib) MiB file; the server may send \(formatBytes(Int64(serverLimit)))/s"
        )
        let cloud = try start(
            "devcloud",
            [
                "devcloud", "serve", "--data", directory + "/devcloud/data", "--listen", "127.0.0.1:0", "--user",
                "demo:demo-password", "--egress-limit", String(serverLimit),
            ])
        let signal = try start(
            "signal", ["signal", "serve", "--listen", "127.0.0.1:0", "--data", directory + "/signal/data"])
        guard let cloudURL = await cloud.line(timeout: 60, { $0.hasPrefix("http://") }) else {
            throw DemoError("DevCloud did not start (see \(directory)/devcloud/devcloud.log)")
        }
        guard let signalURL = await signal.line(timeout: 60, { $0.hasPrefix("ws://") }) else {
            throw DemoError("the signaling server did not start")
        }
        say("  DevCloud at \(cloudURL), signaling at \(signalURL)")
        let account = ["HARP_SERVER": cloudURL, "HARP_USER": "demo", "HARP_APP_PASSWORD": "demo-password"]
        var swarmEnvironment = account
        swarmEnvironment["HARP_SIGNAL"] = signalURL
        swarmEnvironment["HARP_LISTEN"] = "127.0.0.1"

        // The author's file.
        let authorHome = directory + "/author"
        try FileManager.default.createDirectory(atPath: authorHome + "/Footage", withIntermediateDirectories: true)
        let original = authorHome + "/Footage/raw.mov"
        try writeRandomFile(original, size: bytes)
        say("  generated \(original)")

        // 1. The server alone (no signaling server): every peer at once, sharing the server's limit.
        var serverAloneSeconds: Double?
        if serverAlone {
            let upload = try start("uploader", ["put", original, "/", "--json"], environment: account)
            guard await upload.wait() == 0 else { throw DemoError("the upload failed (see uploader/uploader.log)") }
            say("  1. \(peerCount) peers fetch it from the server alone ...")
            let started = Date()
            var fetchers: [DemoChild] = []
            for index in 1...peerCount {
                fetchers.append(
                    try start("alone\(index)", ["get", "/raw.mov", "-o", "copy/", "--json"], environment: account))
            }
            for fetcher in fetchers where await fetcher.wait() != 0 {
                throw DemoError("\(fetcher.name) failed (see \(directory)/\(fetcher.name)/\(fetcher.name).log)")
            }
            serverAloneSeconds = Date().timeIntervalSince(started)
            say(String(format: "     done in %.1f s", serverAloneSeconds!))
        }

        // 2. The swarm: the author puts the file into /Footage and seeds it; the peers fetch through the swarm.
        let author = try start(
            "author", ["put", original, "/Footage", "--seed", "--json"], environment: swarmEnvironment)
        guard await author.line(timeout: 300, { $0.contains("\"file-done\"") }) != nil else {
            throw DemoError("the author's upload failed (see author/author.log)")
        }
        say("  2. the author uploaded /Footage/raw.mov and seeds it; \(peerCount) peers fetch it through the swarm ...")
        let sentBefore = try await stats(cloudURL)
        let started = Date()
        var fetchers: [DemoChild] = []
        for index in 1...peerCount {
            fetchers.append(
                try start(
                    "peer\(index)", ["get", "/Footage/raw.mov", "-o", "copy/", "--json"], environment: swarmEnvironment)
            )
        }
        var statuses: [Int32] = []
        for fetcher in fetchers { statuses.append(await fetcher.wait()) }
        let swarmSeconds = Date().timeIntervalSince(started)
        let serverSent = try await stats(cloudURL) - sentBefore
        author.stop(SIGINT)
        _ = await author.wait()
        let authorSent =
            author.jsonLines.first { $0["event"] as? String == "uploads" }.map {
                ($0["bytesUploaded"] as? NSNumber)?.int64Value ?? 0
            } ?? 0

        // Every copy against the original.
        var allMatch = true
        var rows: [[String: Any]] = []
        for (index, fetcher) in fetchers.enumerated() {
            let copy = directory + "/peer\(index + 1)/copy/raw.mov"
            let matches = statuses[index] == 0 && (try? sameBytes(original, copy)) == true
            allMatch = allMatch && matches
            let done = fetcher.jsonLines.first { $0["event"] as? String == "file-done" } ?? [:]
            rows.append([
                "peer": "peer\(index + 1)", "verified": matches,
                "bytesFromPeers": (done["bytesFromPeers"] as? NSNumber)?.int64Value ?? 0,
                "bytesFromServer": (done["bytesFromServer"] as? NSNumber)?.int64Value ?? 0,
                "bytesSent": (done["bytesUploaded"] as? NSNumber)?.int64Value ?? 0,
                "seconds": (done["seconds"] as? NSNumber)?.doubleValue ?? 0,
            ])
        }
        let speedUp = serverAloneSeconds.map { $0 / max(swarmSeconds, 0.001) }
        if json {
            var summary: [String: Any] = [
                "event": "summary", "bytes": bytes, "peers": peerCount, "verified": allMatch,
                "swarmSeconds": (swarmSeconds * 1000).rounded() / 1000, "serverBytes": serverSent,
                "serverCopies": (Double(serverSent) / Double(bytes) * 1000).rounded() / 1000,
                "authorBytesSent": authorSent, "peerResults": rows, "directory": directory,
            ]
            if let serverAloneSeconds {
                summary["serverAloneSeconds"] = (serverAloneSeconds * 1000).rounded() / 1000
                summary["speedUp"] = ((speedUp ?? 0) * 100).rounded() / 100
            }
            printJSONLine(summary)
        } else {
            print("")
            print("  who       sent to peers   received from peers   from the server   copy")
            print(
                "  author    \(pad(formatBytes(authorSent), 13))   \(pad("-", 19))   \(pad("-", 15))   original")
            for row in rows {
                print(
                    "  \(pad(row["peer"] as! String, 8))  \(pad(formatBytes(row["bytesSent"] as! Int64), 13))   "
                        + "\(pad(formatBytes(row["bytesFromPeers"] as! Int64), 19))   "
                        + "\(pad(formatBytes(row["bytesFromServer"] as! Int64), 15))   "
                        + ((row["verified"] as! Bool) ? "verified" : "DIFFERENT"))
            }
            print(
                "  server    \(pad(formatBytes(serverSent), 13))   "
                    + String(format: "(%.2f copies of the file)", Double(serverSent) / Double(bytes)))
            print("")
            var line = String(format: "  through the swarm: %.1f s", swarmSeconds)
            if let serverAloneSeconds, let speedUp {
                line += String(format: "; from the server alone: %.1f s; speed-up %.1f×", serverAloneSeconds, speedUp)
            }
            print(line)
            print(allMatch ? "  every copy is identical to the original" : "  SOME COPIES DIFFER from the original")
        }
        return allMatch
    }
}

struct DemoError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

private func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

/// Writes `size` random bytes in pieces.
private func writeRandomFile(_ path: String, size: Int64) throws {
    _ = FileManager.default.createFile(atPath: path, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    var generator = SystemRandomNumberGenerator()
    var left = size
    while left > 0 {
        let count = Int(min(left, 4 << 20))
        var piece = [UInt8](repeating: 0, count: count)
        piece.withUnsafeMutableBytes { raw in
            for offset in stride(from: 0, to: count - count % 8, by: 8) {
                raw.storeBytes(of: generator.next(), toByteOffset: offset, as: UInt64.self)
            }
        }
        try handle.write(contentsOf: piece)
        left -= Int64(count)
    }
}

/// Whether two files hold the same bytes.
private func sameBytes(_ a: String, _ b: String) throws -> Bool {
    guard let x = FileHandle(forReadingAtPath: a), let y = FileHandle(forReadingAtPath: b) else { return false }
    defer {
        try? x.close()
        try? y.close()
    }
    while true {
        let p = try x.read(upToCount: 4 << 20) ?? Data()
        let q = try y.read(upToCount: 4 << 20) ?? Data()
        if p != q { return false }
        if p.isEmpty { return true }
    }
}
