import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A `harp-cli` process started by a test, with its standard output collected line by line.
final class LaunchedProcess: @unchecked Sendable {
    let name: String
    let process = Process()
    private let lock = NSLock()
    private var lines: [String] = []
    private var partial = Data()
    private var exited = false
    private var outputEnded = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    let stderrPath: String

    init(name: String, arguments: [String], environment: [String: String], directory: String) throws {
        self.name = name
        process.executableURL = HarpBinary.url
        process.arguments = arguments
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        stderrPath = directory + "/\(name).stderr"
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        // Standard output through a socket pair whose ends are close-on-exec from the start (Swift's Glibc has no
        // pipe2): only this child gets the write end (as its descriptor 1). Foundation closes, in a child, the
        // descriptors open when it prepares the spawn, not one opened meanwhile: a `Pipe` made by a test running in
        // parallel could be inherited, and its output would not end before that other process did.
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw TestbedError("socketpair() failed: errno \(errno)")
        }
        let outputWriter = FileHandle(fileDescriptor: ends[1], closeOnDealloc: true)
        process.standardOutput = outputWriter
        process.terminationHandler = { [weak self] _ in self?.markExited() }
        // Blocking reads on a thread of its own: the end of the output is the read that returns 0. (With a
        // `readabilityHandler`, the end was once not seen for 30 s after the process had exited, under load.)
        let reader = ends[0]
        Thread { [weak self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            var count = 0
            repeat {
                count = buffer.withUnsafeMutableBytes { read(reader, $0.baseAddress, $0.count) }
                if count > 0 { self?.append(Data(buffer[0..<count])) }
            } while count > 0 || (count < 0 && errno == EINTR)
            close(reader)
            self?.endOutput()
        }.start()
        try process.run()
        try outputWriter.close()
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

    /// The end of standard output (every copy of its write end is closed): no more lines will come.
    private func endOutput() {
        lock.withLock {
            if !partial.isEmpty { lines.append(String(decoding: partial, as: UTF8.self)) }
            partial.removeAll()
            outputEnded = true
        }
    }

    /// Whether standard output has ended: every line the process printed is in `output`.
    var hasOutputEnded: Bool { lock.withLock { outputEnded } }

    private func markExited() {
        let resumed = lock.withLock {
            exited = true
            defer { waiters.removeAll() }
            return waiters
        }
        for waiter in resumed { waiter.resume() }
    }

    /// The lines printed so far.
    var output: [String] { lock.withLock { lines } }

    /// The JSON objects among the lines printed so far.
    var jsonLines: [[String: Any]] {
        output.compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
    }

    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Waits until a printed line satisfies `predicate` (polling the collected lines), or the output ends without
    /// one (the process exited), or the time limit passes; returns the line.
    func waitForLine(timeout: Double = 120, _ predicate: (String) -> Bool) async -> String? {
        let found: String?? = await poll(timeout: timeout) {
            // Read the end first: once it is set, every line is in `output`.
            let ended = hasOutputEnded
            if let line = output.first(where: predicate) { return .some(line) }
            return ended ? .some(nil) : nil
        }
        return found ?? nil
    }

    /// Waits for the process to exit (killing it after `timeout` seconds) and returns its exit status.
    @discardableResult
    func wait(timeout: Double = 300) async -> Int32 {
        let watchdog = Task {
            try await Task.sleep(for: .seconds(timeout))
            if process.isRunning {
                Issue.record("\(name) did not finish within \(Int(timeout)) s; killed")
                kill(process.processIdentifier, SIGKILL)
            }
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = lock.withLock {
                if exited { return true }
                waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
        watchdog.cancel()
        // Every line it printed is collected once its standard output has ended (it ends with the process).
        if await poll(timeout: 30, { hasOutputEnded ? true : nil }) == nil {
            Issue.record("the standard output of \(name) was still open 30 s after it exited")
        }
        return process.terminationStatus
    }

    func signal(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }
}

/// DevCloud and a signaling server as real processes on loopback, and peers as separate `harp-cli` processes, each
/// with its own configuration folder (device key) and chunk store.
final class Testbed: @unchecked Sendable {
    let directory: String
    let cloud: LaunchedProcess
    let signalServer: LaunchedProcess
    private(set) var cloudURL = ""
    private(set) var signalURL = ""
    private var processes: [LaunchedProcess] = []
    private let lock = NSLock()

    init(cloudArguments: [String] = []) async throws {
        directory =
            FileManager.default.temporaryDirectory.appendingPathComponent("harp-swarm-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let base = Self.baseEnvironment
        cloud = try LaunchedProcess(
            name: "devcloud",
            arguments: ["devcloud", "serve", "--data", directory + "/cloud", "--listen", "127.0.0.1:0"]
                + ["--user", "alice:alice-pw", "--user", "bob:bob-pw"] + cloudArguments,
            environment: base, directory: directory)
        signalServer = try LaunchedProcess(
            name: "signal", arguments: ["signal", "serve", "--listen", "127.0.0.1:0", "--data", directory + "/signal"],
            environment: base, directory: directory)
        processes = [cloud, signalServer]
        guard let url = await cloud.waitForLine(timeout: 60, { $0.hasPrefix("http://") }) else {
            shutdown()
            throw TestbedError("DevCloud did not start: \(cloud.stderr)")
        }
        cloudURL = url
        guard let ws = await signalServer.waitForLine(timeout: 60, { $0.hasPrefix("ws://") }) else {
            shutdown()
            throw TestbedError("the signaling server did not start: \(signalServer.stderr)")
        }
        signalURL = ws
    }

    /// The environment without the user's own harp settings.
    static var baseEnvironment: [String: String] {
        ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HARP_") && !$0.key.hasPrefix("XDG_") }
    }

    /// The environment of peer `name`: its own config folder and store, the account, and the signaling server.
    func environment(peer name: String, user: String = "alice", signal: Bool = true) -> [String: String] {
        var environment = Self.baseEnvironment
        let home = directory + "/peers/" + name
        try? FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        environment["HARP_CONFIG_DIR"] = home + "/config"
        environment["HARP_STORE"] = home + "/store.sqlite"
        environment["XDG_STATE_HOME"] = home + "/state"
        environment["HARP_SERVER"] = cloudURL
        environment["HARP_USER"] = user
        environment["HARP_APP_PASSWORD"] = user + "-pw"
        environment["HARP_LISTEN"] = "127.0.0.1"
        if signal { environment["HARP_SIGNAL"] = signalURL }
        // For looking into a failing test: TESTBED_LOG_LEVEL=debug gives every peer that log level.
        if let level = ProcessInfo.processInfo.environment["TESTBED_LOG_LEVEL"] {
            environment["HARP_LOG_LEVEL"] = level
        }
        return environment
    }

    /// The working folder of peer `name`.
    func home(_ name: String) -> String { directory + "/peers/" + name }

    /// Starts `harp-cli` as peer `name`, in its home folder.
    func start(
        _ name: String, _ arguments: [String], user: String = "alice", signal: Bool = true
    ) throws
        -> LaunchedProcess
    {
        let environment = environment(peer: name, user: user, signal: signal)
        let process = try LaunchedProcess(
            name: name + "-" + (arguments.first ?? "run"), arguments: arguments, environment: environment,
            directory: home(name))
        lock.withLock { processes.append(process) }
        return process
    }

    /// Runs `harp-cli` as peer `name` to the end.
    func run(
        _ name: String, _ arguments: [String], user: String = "alice", signal: Bool = true
    ) async throws
        -> LaunchedProcess
    {
        let process = try start(name, arguments, user: user, signal: signal)
        await process.wait()
        return process
    }

    /// A file of `size` random bytes in the testbed folder, written in pieces (never whole in memory).
    func makeFile(_ name: String, size: Int) throws -> String {
        let path = directory + "/" + name
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var generator = SystemRandomNumberGenerator()
        var left = size
        while left > 0 {
            let count = min(left, 4 << 20)
            var bytes = [UInt8](repeating: 0, count: count)
            bytes.withUnsafeMutableBytes { raw in
                for offset in stride(from: 0, to: count - count % 8, by: 8) {
                    raw.storeBytes(of: generator.next(), toByteOffset: offset, as: UInt64.self)
                }
            }
            try handle.write(contentsOf: bytes)
            left -= count
        }
        return path
    }

    /// Uploads a local file as `user` with a plain `put` (no signaling: no sidecar, no seeding).
    func upload(_ local: String, to folder: String = "/", user: String = "alice") async throws {
        let process = try await run(
            "uploader-\(UUID().uuidString.prefix(8))", ["put", local, folder], user: user, signal: false)
        guard process.process.terminationStatus == 0 else {
            throw TestbedError("upload failed: \(process.stderr)")
        }
    }

    /// DevCloud's counters (`/harp-devcloud/stats`).
    func cloudStats() async throws -> [String: Any] {
        let (data, _) = try await URLSession.shared.data(from: URL(string: cloudURL + "/harp-devcloud/stats")!)
        return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }

    /// Bytes DevCloud has sent in file bodies so far.
    func cloudBytesSent() async throws -> Int64 {
        (try await cloudStats()["bytesSent"] as? NSNumber)?.int64Value ?? -1
    }

    /// Takes a files_lock user lock on `path` (`LOCK` with `X-User-Lock: 1`) as `user`; returns the HTTP status.
    func userLock(_ path: String, user: String = "alice") async throws -> Int {
        var request = URLRequest(url: URL(string: cloudURL + "/remote.php/dav/files/\(user)" + path)!)
        request.httpMethod = "LOCK"
        request.setValue("1", forHTTPHeaderField: "X-User-Lock")
        request.setValue(
            "Basic " + Data("\(user):\(user)-pw".utf8).base64EncodedString(), forHTTPHeaderField: "Authorization")
        let (_, response) = try await URLSession.shared.data(for: request)
        return (response as? HTTPURLResponse)?.statusCode ?? -1
    }

    /// One value from the signaling server's Prometheus metrics.
    func signalMetric(_ name: String) async throws -> Double {
        let http = signalURL.replacingOccurrences(of: "ws://", with: "http://").replacingOccurrences(
            of: "/v1/ws", with: "/metrics")
        let (data, _) = try await URLSession.shared.data(from: URL(string: http)!)
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "") ?? -1
        }
        return -1
    }

    /// Stops every process and removes the folder.
    func shutdown() {
        for process in lock.withLock({ processes }) { process.signal(SIGKILL) }
        // TESTBED_KEEP=1 keeps the folder (every process's output and files) for looking into a failing test.
        guard ProcessInfo.processInfo.environment["TESTBED_KEEP"] == nil else { return }
        try? FileManager.default.removeItem(atPath: directory)
    }
}

struct TestbedError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The one polling loop of the end-to-end tests: evaluates `probe` every 50 ms until it returns a value, and returns
/// nil once `timeout` seconds have passed without one.
func poll<T>(timeout: Double, _ probe: () async throws -> T?) async rethrows -> T? {
    let deadline = ContinuousClock.now + .seconds(timeout)
    while ContinuousClock.now < deadline {
        if let value = try await probe() { return value }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await probe()
}

/// Waits until `condition` holds; throws a ``TestbedError`` naming `what` (evaluated then) after `timeout` seconds.
func waitUntil(
    _ what: @autoclosure () -> String, timeout: Double = 120, _ condition: () async throws -> Bool
) async throws {
    guard try await poll(timeout: timeout, { try await condition() ? true : nil }) != nil else {
        throw TestbedError("timed out after \(Int(timeout)) s waiting for \(what())")
    }
}

/// Whether two files have the same bytes (read in pieces).
func sameContents(_ a: String, _ b: String) throws -> Bool {
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

/// The `file-done` object a `get --json` printed for one file.
extension LaunchedProcess {
    /// Waits until a `--json` progress line reports at least `bytes` of the file; false on timeout or exit.
    func waitForProgress(atLeast bytes: Int64, timeout: Double = 120) async -> Bool {
        let line = await waitForLine(timeout: timeout) { line in
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                object["event"] as? String == "progress"
            else { return false }
            return int64(object["bytes"]) >= bytes
        }
        return line != nil
    }
}

func fileDone(_ process: LaunchedProcess) -> [String: Any]? {
    process.jsonLines.first { $0["event"] as? String == "file-done" }
}

func int64(_ value: Any?) -> Int64 { (value as? NSNumber)?.int64Value ?? -1 }

/// A loopback TCP port that refuses every connection while this value lives: bound (so that nothing else takes it)
/// and never listening. For a server that is down, without a fixed port that something may listen on.
final class RefusingPort {
    let port: Int
    private let descriptor: Int32

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw TestbedError("socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(descriptor, address, length) == 0 && getsockname(descriptor, address, &length) == 0
            }
        }
        guard bound else {
            close(descriptor)
            throw TestbedError("bind() to 127.0.0.1:0 failed: errno \(errno)")
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(descriptor) }
}
