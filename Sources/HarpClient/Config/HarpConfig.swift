public import Foundation
internal import TOMLKit

/// `config.toml` in the configuration folder: defaults for every command, below flags and the environment.
///
/// The file is TOML, parsed by TOMLKit (toml++): the same parser and escape rules as the credentials file. harp reads
/// `[table]`s of strings and integers; unknown tables and keys are errors, so a typo is reported instead of silently
/// ignored. Every key is documented in docs/cli.md.
public struct HarpConfig: Equatable, Sendable {
    public var server: String?
    public var user: String?
    public var signalURL: String?
    public var signalPin: String?
    public var joinKeyFile: String?
    public var storePath: String?
    public var listen: String?
    public var advertise: String?
    public var uploadLimit: String?
    public var parallelFiles: Int?

    /// The keys this version knows, by table ("" is the top level).
    public static let keys: [String: Set<String>] = [
        "": ["server", "user"],
        "signal": ["url", "pin", "join_key_file"],
        "store": ["path"],
        "peer": ["listen", "advertise"],
        "limits": ["upload", "parallel_files"],
    ]

    /// An empty configuration.
    public init() {}

    /// Parses the text of a config file; `file` names it in errors.
    public init(text: String, file: String) throws(ConfigError) {
        let document: TOMLTable
        do {
            document = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw .syntax(file: file, line: error.source.begin.line, why: error.description)
        } catch {
            throw .syntax(file: file, line: 1, why: "\(error)")
        }
        let locate = KeyLocator(text: text)
        var values: [String: any TOMLValueConvertible] = [:]
        for key in document.keys {
            guard let value = document[key] else { continue }
            if let table = value.table, Self.keys[key] != nil, key != "" {
                for name in table.keys {
                    guard let inner = table[name] else { continue }
                    values[key + "." + name] = inner
                }
            } else {
                values[key] = value
            }
        }
        for key in values.keys.sorted() {
            let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
            let (table, name) = parts.count == 2 ? (parts[0], parts[1]) : ("", parts[0])
            guard Self.keys[table]?.contains(name) == true else {
                throw .unknownKey(file: file, line: locate.line(of: key), key: key)
            }
        }
        func string(_ key: String) throws(ConfigError) -> String? {
            guard let value = values[key] else { return nil }
            guard let text = value.string else {
                throw .wrongType(file: file, line: locate.line(of: key), key: key, expected: "a string")
            }
            return text
        }
        server = try string("server")
        user = try string("user")
        signalURL = try string("signal.url")
        signalPin = try string("signal.pin")
        joinKeyFile = try string("signal.join_key_file").map(Self.expandTilde)
        storePath = try string("store.path").map(Self.expandTilde)
        listen = try string("peer.listen")
        advertise = try string("peer.advertise")
        if let value = values["limits.upload"] {
            if let text = value.string {
                uploadLimit = text
            } else if let number = value.int {
                uploadLimit = String(number)
            } else {
                throw .wrongType(
                    file: file, line: locate.line(of: "limits.upload"), key: "limits.upload", expected: "a rate")
            }
        }
        if let value = values["limits.parallel_files"] {
            guard let number = value.int, number >= 1 else {
                throw .wrongType(
                    file: file, line: locate.line(of: "limits.parallel_files"), key: "limits.parallel_files",
                    expected: "a positive integer")
            }
            parallelFiles = number
        }
    }

    /// Loads `config.toml` from `directory`; no file is an empty configuration.
    public static func load(from directory: URL) throws(ConfigError) -> HarpConfig {
        let path = directory.appendingPathComponent("config.toml").path
        guard FileManager.default.fileExists(atPath: path) else { return HarpConfig() }
        guard let data = FileManager.default.contents(atPath: path) else { throw .unreadable(path) }
        return try HarpConfig(text: String(decoding: data, as: UTF8.self), file: path)
    }

    /// The organisation join key from `signal.join_key_file`, which must not be readable by others.
    public func joinKey() throws(ConfigError) -> [UInt8]? {
        guard let path = joinKeyFile else { return nil }
        var info = stat()
        guard stat(path, &info) == 0, let data = FileManager.default.contents(atPath: path) else {
            throw .unreadable(path)
        }
        guard info.st_mode & 0o077 == 0 else { throw .tooOpen(path) }
        let key = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return key.isEmpty ? nil : Array(key.utf8)
    }

    /// `~/x` → `$HOME/x`.
    public static func expandTilde(_ path: String) -> String {
        guard path.hasPrefix("~/") else { return path }
        return BaseDirectories.home() + path.dropFirst()
    }
}

/// A problem with the configuration file.
public enum ConfigError: Error, Equatable, CustomStringConvertible {
    case unreadable(String)
    /// Not TOML (the parser's message; TOML forbids a key set twice, which is reported here too).
    case syntax(file: String, line: Int, why: String)
    case unknownKey(file: String, line: Int, key: String)
    case wrongType(file: String, line: Int, key: String, expected: String)
    case tooOpen(String)

    public var description: String {
        switch self {
        case .unreadable(let path): "cannot read \(path)"
        case .syntax(let file, let line, let why): "\(file) line \(line): \(why)"
        case .unknownKey(let file, let line, let key): "\(file) line \(line): unknown key \(key) (see docs/cli.md)"
        case .wrongType(let file, let line, let key, let expected): "\(file) line \(line): \(key) must be \(expected)"
        case .tooOpen(let path): "\(path) is readable by others; chmod 600 it"
        }
    }
}

/// Finds the line a dotted key of a parsed document was set on, for error messages only (TOMLKit keeps no source
/// positions for values). It follows `[table]` headers and `key =` starts; a key it cannot find is reported on line 1.
struct KeyLocator {
    let lines: [Substring]

    init(text: String) {
        lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    }

    func line(of dottedKey: String) -> Int {
        let parts = dottedKey.split(separator: ".", maxSplits: 1).map(String.init)
        let (table, name) = parts.count == 2 ? (parts[0], parts[1]) : ("", parts[0])
        var current = ""
        for (index, raw) in lines.enumerated() {
            let content = raw.trimmingCharacters(in: .whitespaces)
            if content.hasPrefix("["), let close = content.firstIndex(of: "]") {
                current = content[content.index(after: content.startIndex)..<close]
                    .trimmingCharacters(in: .whitespaces)
                continue
            }
            guard let equals = content.firstIndex(of: "=") else { continue }
            let key = content[..<equals].trimmingCharacters(in: .whitespaces)
            if (current == table && key == name) || (current.isEmpty && key == dottedKey) { return index + 1 }
        }
        return 1
    }
}
