public import Foundation
internal import TOMLKit

#if canImport(Glibc)
    internal import Glibc
#endif

/// The stored login in `credentials.toml` inside harp's configuration folder, written 0600
/// in a 0700 folder. The folder is `$HARP_CONFIG_DIR`, else `$XDG_CONFIG_HOME/harp`, else
/// `~/.config/harp`.
public struct CredentialStore: Sendable {
    /// The configuration folder.
    public let directory: URL
    /// The credentials file inside it.
    public var fileURL: URL { directory.appendingPathComponent("credentials.toml") }

    /// A store in `directory`.
    public init(directory: URL) {
        self.directory = directory
    }

    /// The store at the standard place for `environment`.
    public init(environment: [String: String]? = nil) {
        let environment = environment ?? ProcessInfo.processInfo.environment
        if let dir = environment["HARP_CONFIG_DIR"].nonEmpty {
            directory = URL(fileURLWithPath: dir)
        } else if let xdg = environment["XDG_CONFIG_HOME"].nonEmpty {
            directory = URL(fileURLWithPath: xdg).appendingPathComponent("harp")
        } else {
            let home = environment["HOME"].nonEmpty ?? NSHomeDirectory()
            directory = URL(fileURLWithPath: home).appendingPathComponent(".config/harp")
        }
    }

    /// The stored values (each may be missing); an absent file gives an empty result.
    public func load() throws(CredentialStoreError) -> StoredLogin {
        guard FileManager.default.fileExists(atPath: fileURL.path) else { return StoredLogin() }
        guard let data = FileManager.default.contents(atPath: fileURL.path) else {
            throw .unreadable(fileURL.path)
        }
        let table = try Self.parse(String(decoding: data, as: UTF8.self), file: fileURL.path)
        return StoredLogin(
            server: table["server"], user: table["user"], appPassword: table["app_password"], userID: table["user_id"])
    }

    /// Writes the credentials: the file is created 0600 before any secret goes into it.
    public func save(_ credentials: Credentials) throws(CredentialStoreError) {
        var fields = [("server", credentials.server.absoluteString), ("user", credentials.user)]
        if credentials.userID != credentials.user { fields.append(("user_id", credentials.userID)) }
        fields.append(("app_password", credentials.appPassword))
        let text = Self.render(fields)
        do {
            try FileManager.default.createDirectory(
                at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw .unwritable(directory.path)
        }
        let temporary = directory.appendingPathComponent(".credentials.toml.tmp")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .unwritable(temporary.path) }
        fchmod(fd, 0o600)
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced, rename(temporary.path, fileURL.path) == 0 else {
            unlink(temporary.path)
            throw .unwritable(fileURL.path)
        }
    }

    /// The string values of a credentials file (TOML, read by TOMLKit like config.toml); a value that is not a
    /// string is malformed.
    static func parse(_ text: String, file: String) throws(CredentialStoreError) -> [String: String] {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw .malformed(file: file, line: error.source.begin.line)
        } catch {
            throw .malformed(file: file, line: 1)
        }
        var values: [String: String] = [:]
        for key in table.keys {
            guard let value = table[key]?.string else {
                let line =
                    text.split(separator: "\n", omittingEmptySubsequences: false)
                    .firstIndex { $0.trimmingPrefix(while: \.isWhitespace).hasPrefix(key) } ?? 0
                throw .malformed(file: file, line: line + 1)
            }
            values[key] = value
        }
        return values
    }

    /// The file's text: a comment, then `key = "value"` lines, quoted by TOMLKit.
    static func render(_ pairs: [(String, String)]) -> String {
        let table = TOMLTable()
        for (key, value) in pairs { table[key] = value }
        return "# harp login; keep this file private (0600)\n" + table.convert(to: .toml, options: []) + "\n"
    }

    /// Removes the credentials file (no error when it does not exist).
    public func delete() throws(CredentialStoreError) {
        guard FileManager.default.fileExists(atPath: fileURL.path) else { return }
        guard unlink(fileURL.path) == 0 else { throw .unwritable(fileURL.path) }
    }
}

/// What the credentials file holds; any field may be missing.
public struct StoredLogin: Sendable, Hashable, CustomStringConvertible {
    public var server: String?
    public var user: String?
    public var appPassword: String?
    /// The WebDAV user id, when it differs from the login name.
    public var userID: String?

    public init(server: String? = nil, user: String? = nil, appPassword: String? = nil, userID: String? = nil) {
        self.server = server
        self.user = user
        self.appPassword = appPassword
        self.userID = userID
    }

    public var description: String {
        "StoredLogin(server: \(server ?? "-"), user: \(user ?? "-"), appPassword: \(appPassword == nil ? "-" : "<redacted>"))"
    }
}

/// Problems with the configuration folder or the resolved login.
public enum CredentialStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    case unreadable(String)
    case unwritable(String)
    case malformed(file: String, line: Int)
    case notLoggedIn(missing: [String])
    case invalidServerURL(String)

    public var description: String {
        switch self {
        case .unreadable(let path): "Cannot read \(path)"
        case .unwritable(let path): "Cannot write \(path)"
        case .malformed(let file, let line): "\(file) line \(line) is not a `key = \"value\"` line"
        case .notLoggedIn(let missing):
            "Not logged in: no \(missing.joined(separator: ", ")); run `harp-cli login URL` or set HARP_SERVER, HARP_USER and HARP_APP_PASSWORD"
        case .invalidServerURL(let text): "\(text) is not an http:// or https:// server URL"
        }
    }
}

extension Credentials {
    /// Resolves each of server, user and app password separately, in the order flag,
    /// environment (`HARP_SERVER`, `HARP_USER`, `HARP_APP_PASSWORD`), file.
    public static func resolve(
        server: String?, user: String?, appPassword: String?,
        environment: [String: String]? = nil, stored: StoredLogin
    ) throws(CredentialStoreError) -> Credentials {
        let environment = environment ?? ProcessInfo.processInfo.environment
        let serverText = server.nonEmpty ?? environment["HARP_SERVER"].nonEmpty ?? stored.server.nonEmpty
        let userText = user.nonEmpty ?? environment["HARP_USER"].nonEmpty ?? stored.user.nonEmpty
        let password = appPassword.nonEmpty ?? environment["HARP_APP_PASSWORD"].nonEmpty ?? stored.appPassword.nonEmpty
        var missing: [String] = []
        if serverText == nil { missing.append("server") }
        if userText == nil { missing.append("user") }
        if password == nil { missing.append("app password") }
        guard let serverText, let userText, let password else { throw .notLoggedIn(missing: missing) }
        // The stored user id belongs to the stored login name only.
        let userID = userText == stored.user ? stored.userID : nil
        return Credentials(
            server: try parseServerURL(serverText), user: userText, appPassword: password, userID: userID)
    }

    /// An http(s) URL without user info, query or fragment.
    public static func parseServerURL(_ text: String) throws(CredentialStoreError) -> URL {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            url.host != nil, url.user == nil, url.password == nil, url.query == nil, url.fragment == nil,
            let clean = URL(string: url.normalizedServerBase)
        else { throw .invalidServerURL(text.contains("@") ? "the given URL" : text) }
        return clean
    }
}
