public import Foundation
internal import Hummingbird
public import Logging
internal import NIOCore
internal import Synchronization

/// A small Nextcloud-compatible server (WebDAV, OCS, chunked upload v2, Login Flow v2, shares, versions, locks,
/// brute-force lockout) for harp's tests and the local demo. Never for production: it binds to loopback only (unless
/// `start(allowNonLoopback:)` opts in, for testbeds in network namespaces) and keeps passwords as plain salted hashes.
///
/// ```swift
/// let server = DevCloudServer(configuration: config, logger: logger)
/// let port = try await server.start()          // port 0: any free port
/// ... use server.baseURL ...
/// await server.stop()
/// ```
public final class DevCloudServer: Sendable {
    let configuration: DevCloudConfiguration
    let logger: Logger
    let store: Store
    let filesRoot: URL
    let uploadsRoot: URL
    let versionsRoot: URL
    let instanceID: String
    let state = Mutex(ServerState())
    /// Serializes the disk-and-index changes of writes (install, move, copy, delete) so two of them never interleave.
    let writeLock = Mutex(())
    let egress: EgressLimiter?
    private let runtime = Mutex<Runtime?>(nil)

    private struct Runtime: Sendable {
        var task: Task<Void, any Error>
        var port: Int
        var host: String
    }

    /// Opens (or creates) the data directory and the index, and adds the configured users and shares.
    /// Errors here are configuration errors (unwritable folder, corrupt index) and are reported at `start`.
    public init(configuration: DevCloudConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        let root = URL(fileURLWithPath: configuration.dataDirectory, isDirectory: true)
        filesRoot = root.appendingPathComponent("files", isDirectory: true)
        uploadsRoot = root.appendingPathComponent("uploads", isDirectory: true)
        versionsRoot = root.appendingPathComponent("versions", isDirectory: true)
        egress = configuration.egressBytesPerSecond.map { EgressLimiter(bytesPerSecond: $0) }
        var openedStore: Store?
        var id = "ocdevcloud00"
        do {
            for folder in [filesRoot, uploadsRoot, versionsRoot] {
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            }
            let store = try Store(path: root.appendingPathComponent("devcloud.sqlite").path)
            id = try store.instanceID()
            openedStore = store
        } catch {
            logger.error("devcloud.open failed", metadata: ["error": "\(error)"])
        }
        // A store that failed to open is replaced by a throwaway one so the type stays usable; start() reports it.
        self.store = openedStore ?? Self.throwawayStore()
        self.openFailed = openedStore == nil
        instanceID = id
        // Configured shares get their folder created when it does not exist yet, so a fresh data directory works.
        var problems: [String] = []
        for user in configuration.users {
            do { try addUser(user) } catch { problems.append("user \(user.name): \(error)") }
        }
        for share in configuration.shares {
            do {
                if let path = try? normalizedPath(share.path), !path.isEmpty,
                    !fileExists(owner: share.owner, path: path)
                {
                    try FileManager.default.createDirectory(
                        at: diskURL(owner: share.owner, path: path), withIntermediateDirectories: true)
                }
                try addShare(share)
            } catch {
                problems.append("share \(share.owner):\(share.path) with \(share.sharee): \(error)")
            }
        }
        for problem in problems { logger.error("devcloud.seed failed", metadata: ["problem": "\(problem)"]) }
        seedProblems.withLock { $0 = problems }
    }

    /// Configuration entries that could not be applied; `start` refuses to run with any.
    private let seedProblems = Mutex<[String]>([])

    private let openFailed: Bool

    private static func throwawayStore() -> Store {
        let path = NSTemporaryDirectory() + "/devcloud-\(UUID().uuidString).sqlite"
        do {
            return try Store(path: path)
        } catch {
            preconditionFailure("DevCloud cannot create even a temporary SQLite file at \(path): \(error)")
        }
    }

    /// Binds to `host:port` (port 0 picks a free port), returns the bound port once the server is listening.
    /// Calling it again while running returns the same port.
    ///
    /// `host` must be a loopback address unless `allowNonLoopback` is true. That opt-in is for testbeds in network
    /// namespaces only (bench/swarm binds DevCloud to 0.0.0.0 inside a namespace of its own, reachable from peers in
    /// other namespaces); DevCloud is never for production. The admin endpoints under `/harp-devcloud/` still answer
    /// loopback peers only.
    public func start(host: String = "127.0.0.1", port: Int = 0, allowNonLoopback: Bool = false) async throws -> Int {
        if openFailed { throw DevCloudError.dataDirectoryUnusable(configuration.dataDirectory) }
        let problems = seedProblems.withLock { $0 }
        if !problems.isEmpty { throw DevCloudError.invalidConfiguration(problems.joined(separator: "; ")) }
        if let running = runtime.withLock({ $0?.port }) { return running }
        guard allowNonLoopback || host == "127.0.0.1" || host == "::1" || host == "localhost" else {
            throw DevCloudError.notLoopback(host)
        }
        if allowNonLoopback {
            logger.warning(
                "devcloud.non-loopback",
                metadata: ["host": "\(host)", "note": "for testbeds in network namespaces only"])
        }
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            responder: DevCloudResponder(server: self),
            server: .http1(configuration: .init(additionalChannelHandlers: [ContinueHandler()])),
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            },
            logger: logger
        )
        // Application.run() runs its own service group; cancelling the task shuts the server down.
        let task = Task {
            defer { continuation.finish() }
            try await app.run()
        }
        var bound: Int?
        for await value in stream { bound = value }
        guard let bound, bound > 0 else {
            _ = try? await task.value
            throw DevCloudError.couldNotListen(host, port)
        }
        runtime.withLock { $0 = Runtime(task: task, port: bound, host: host) }
        logger.info("devcloud.listening", metadata: ["host": "\(host)", "port": "\(bound)"])
        return bound
    }

    /// Stops listening and waits for the server to shut down.
    public func stop() async {
        guard
            let current = runtime.withLock({ value -> Runtime? in
                defer { value = nil }
                return value
            })
        else { return }
        current.task.cancel()
        _ = try? await current.task.value
    }

    /// `http://127.0.0.1:PORT` once started (empty before).
    public var baseURL: String {
        runtime.withLock { runtime in
            guard let runtime else { return "" }
            let host = runtime.host.contains(":") ? "[\(runtime.host)]" : runtime.host
            return "http://\(host):\(runtime.port)"
        }
    }

    /// Body bytes of file GET responses (files and versions) actually written, in total or for one user.
    public func bytesSent(user: String? = nil) -> Int64 {
        state.withLock { state in
            guard let user else { return state.bytesSentTotal }
            return state.bytesSentByUser[user] ?? 0
        }
    }

    /// Number of requests answered so far (including faults and refusals).
    public var requestCount: Int { state.withLock { $0.requests } }

    /// Requests answered so far by HTTP method (`GET`, `PROPFIND` …), including faults and refusals but not the admin
    /// endpoints: what a client cost the server, for tests and benchmarks.
    public var requestCountsByMethod: [String: Int] { state.withLock { $0.requestsByMethod } }

    /// Answers the next `count` requests that match (method and path prefix, both optional) with `status`
    /// instead of serving them, e.g. `injectFaults(status: 503, count: 2)`.
    /// `status` must be a final HTTP status (200...599).
    public func injectFaults(status: Int, count: Int, method: String? = nil, pathPrefix: String? = nil) {
        precondition((200...599).contains(status), "injected fault status \(status) is not 200...599")
        state.withLock {
            $0.faults.append(
                FaultRule(status: status, remaining: count, method: method?.uppercased(), pathPrefix: pathPrefix))
        }
    }

    /// Adds or updates an account (persisted).
    public func addUser(_ user: DevCloudConfiguration.User) throws {
        guard !user.name.isEmpty, user.name != ".", user.name != "..",
            !user.name.contains(where: { $0 == "/" || $0 == ":" || $0 == "\0" })
        else { throw DevCloudError.badUserName(user.name) }
        try store.upsertUser(user)
        try FileManager.default.createDirectory(
            at: filesRoot.appendingPathComponent(user.name, isDirectory: true), withIntermediateDirectories: true)
    }

    /// Adds or updates a user share (persisted); returns its OCS share id. The shared path must exist.
    @discardableResult
    public func addShare(_ share: DevCloudConfiguration.Share) throws -> Int {
        let path = try normalizedPath(share.path)
        guard !path.isEmpty, fileExists(owner: share.owner, path: path) else {
            throw DevCloudError.noSuchPath(share.owner, share.path)
        }
        guard try store.user(share.sharee) != nil else { throw DevCloudError.noSuchUser(share.sharee) }
        guard (1...31).contains(share.permissions), share.permissions & 1 != 0 else {
            throw DevCloudError.badPermissions(share.permissions)
        }
        let record = try store.upsertShare(
            owner: share.owner, path: "/" + path, sharee: share.sharee, permissions: share.permissions)
        return Int(record.id ?? 0)
    }

    /// Drops every pending injected fault.
    public func clearFaults() {
        state.withLock { $0.faults.removeAll() }
    }

    /// Puts a file into `owner`'s tree without HTTP (test and demo seeding), creating missing parent folders.
    /// `mtime` (unix seconds) defaults to now; `checksum` is stored as given, like `OC-Checksum` (e.g. "SHA1:...").
    /// Returns the fileid.
    @discardableResult
    public func seedFile(
        owner: String, path: String, contents: Data, mtime: Int64? = nil, checksum: String? = nil
    )
        throws -> Int64
    {
        let normalized = try normalizedPath(path)
        guard !normalized.isEmpty, try store.user(owner) != nil else { throw DevCloudError.noSuchPath(owner, path) }
        let location = Location(viewer: owner, viewPath: normalized, owner: owner, ownerPath: normalized, share: nil)
        let parent = diskURL(owner: owner, path: location.parentViewPath)
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: tmpRoot, withIntermediateDirectories: true)
        let temp = tmpRoot.appendingPathComponent(UUID().uuidString)
        try contents.write(to: temp)
        let (record, _) = try installFile(
            from: temp, at: location, mtime: mtime ?? Int64(Date().timeIntervalSince1970), checksum: checksum,
            author: owner)
        return record.id ?? 0
    }

    /// Forgets every failed login, like `occ security:bruteforce:reset`.
    public func resetBruteForce() {
        state.withLock { $0.failures.removeAll() }
    }

    /// Grants a pending Login Flow v2 for `user` without a browser (DevCloud only). With no token, the oldest
    /// pending flow is granted. Returns false when there is no such pending flow or user.
    public func grantLoginFlow(user: String, loginToken: String? = nil) -> Bool {
        guard (try? store.user(user)) != nil else { return false }
        return state.withLock { state in
            let candidates = state.loginFlows.filter { $0.value.grantedUser == nil }
            let key =
                loginToken.flatMap { token in candidates.first(where: { $0.value.loginToken == token })?.key }
                ?? candidates.min(by: { $0.value.created < $1.value.created })?.key
            guard let key else { return false }
            state.loginFlows[key]?.grantedUser = user
            return true
        }
    }
}

/// Why DevCloud could not start or refused an administrative change.
public enum DevCloudError: Error, CustomStringConvertible {
    case dataDirectoryUnusable(String)
    case notLoopback(String)
    case couldNotListen(String, Int)
    case noSuchPath(String, String)
    case noSuchUser(String)
    case badPermissions(Int)
    case invalidConfiguration(String)
    case badUserName(String)

    public var description: String {
        switch self {
        case .dataDirectoryUnusable(let path): "DevCloud cannot use its data directory \(path)"
        case .notLoopback(let host):
            "DevCloud listens on loopback only, not on \(host) (--allow-non-loopback is for network-namespace testbeds)"
        case .couldNotListen(let host, let port): "DevCloud could not listen on \(host):\(port)"
        case .noSuchPath(let owner, let path): "\(owner) has no file or folder \(path) to share"
        case .noSuchUser(let user): "no DevCloud user \(user)"
        case .badPermissions(let bits): "share permissions \(bits) are not 1...31 with the read bit"
        case .invalidConfiguration(let problems): "DevCloud configuration cannot be applied: \(problems)"
        case .badUserName(let name): "\"\(name)\" cannot be a user name (empty, '.', '..', or contains '/', ':')"
        }
    }
}
