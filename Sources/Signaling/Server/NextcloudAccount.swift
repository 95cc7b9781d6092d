public import Foundation
import Logging
import NextcloudClient

/// The signaling server's own Nextcloud account (`--nextcloud URL`, `HARP_SIGNAL_NC_USER`,
/// `HARP_SIGNAL_NC_APP_PASSWORD` or a 0600 credentials file): the account devices share their enrollment challenge
/// with. Its app password is the only Nextcloud secret the server holds; no description of this value shows it.
public struct NextcloudAccount: Sendable, CustomStringConvertible {
    public var server: URL
    public var user: String
    public var appPassword: String

    public init(server: URL, user: String, appPassword: String) {
        self.server = server
        self.user = user
        self.appPassword = appPassword
    }

    public var description: String { "NextcloudAccount(\(server.absoluteString), user: \(user), <redacted>)" }

    /// The instance as lineages and challenges name it: the URL without a trailing slash.
    public var instance: String {
        var text = server.absoluteString
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }

    /// Reads `user NAME` and `app_password SECRET` lines from `path`, refusing a file that group or others may read.
    public static func load(file path: String, server: URL) throws -> NextcloudAccount {
        var status = stat()
        guard stat(path, &status) == 0 else { throw SignalServerError.storage("cannot read \(path)") }
        guard status.st_mode & 0o077 == 0 else {
            throw SignalServerError.storage("\(path) may be read by others: chmod 600 it")
        }
        guard let data = FileManager.default.contents(atPath: path), data.count <= 4096 else {
            throw SignalServerError.storage("cannot read \(path) (at most 4 KiB)")
        }
        var user: String?
        var password: String?
        for line in String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "user": user = parts[1]
            case "app_password": password = parts[1]
            default: continue
            }
        }
        guard let user, let password, !user.isEmpty, !password.isEmpty else {
            throw SignalServerError.storage("\(path) needs the lines 'user NAME' and 'app_password SECRET'")
        }
        return NextcloudAccount(server: server, user: user, appPassword: password)
    }
}

/// `EnrollmentAccount` over the Nextcloud client: the share through OCS (`GET .../shares/ID`, at most 64 KiB of
/// answer), the file through WebDAV (at most the document limit).
struct NextcloudEnrollmentAccount: EnrollmentAccount {
    let client: NextcloudClient
    let instance: String
    var user: String { client.credentials.userID }

    init(_ account: NextcloudAccount, logger: Logger) {
        var options = TransportOptions()
        options.connectTimeoutMilliseconds = 5000
        options.lowSpeedSeconds = 10
        options.maximumConcurrentTransfers = 4
        options.retry = RetryPolicy(maximumAttempts: 1, baseDelay: .milliseconds(100))
        client = NextcloudClient(
            credentials: Credentials(server: account.server, user: account.user, appPassword: account.appPassword),
            options: options, logger: logger)
        instance = account.instance
    }

    func share(id: String) async throws -> ShareFacts {
        let share = try await client.share(id: id)
        guard let owner = share.owner, let target = share.fileTarget else {
            throw SignalServerError.storage("the share has no owner or target")
        }
        return ShareFacts(
            shareType: share.shareType, owner: owner, fileOwner: share.fileOwner, shareWith: share.shareWith,
            itemType: share.itemType, permissions: share.permissions.rawValue, target: target)
    }

    func read(_ path: String, limit: Int) async throws -> Data {
        try await client.data(at: path, limit: limit).0
    }
}
