import Foundation

/// `config.toml` in the configuration folder: defaults for every command, below flags and the environment.
///
/// The file is a small subset of TOML: comments, `[table]` headers, and `key = value` lines whose value is a basic
/// string ("..."), a literal string ('...'), an integer or a boolean. Unknown tables and keys are errors, so a typo
/// is reported instead of silently ignored. Every key is documented in docs/cli.md.
struct HarpConfig: Equatable, Sendable {
    var server: String?
    var user: String?
    var signalURL: String?
    var signalPin: String?
    var joinKeyFile: String?
    var storePath: String?
    var listen: String?
    var advertise: String?
    var uploadLimit: String?
    var parallelFiles: Int?

    /// The keys this version knows, by table ("" is the top level).
    static let keys: [String: Set<String>] = [
        "": ["server", "user"],
        "signal": ["url", "pin", "join_key_file"],
        "store": ["path"],
        "peer": ["listen", "advertise"],
        "limits": ["upload", "parallel_files"],
    ]

    init() {}

    /// Parses the text of a config file; `file` names it in errors.
    init(text: String, file: String) throws(ConfigError) {
        let values = try TOMLSubset.parse(text, file: file)
        for (key, entry) in values {
            let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
            let (table, name) = parts.count == 2 ? (parts[0], parts[1]) : ("", parts[0])
            guard Self.keys[table]?.contains(name) == true else {
                throw .unknownKey(file: file, line: entry.line, key: key)
            }
        }
        func string(_ key: String) throws(ConfigError) -> String? {
            guard let entry = values[key] else { return nil }
            guard case .string(let text) = entry.value else {
                throw .wrongType(file: file, line: entry.line, key: key, expected: "a string")
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
        if let entry = values["limits.upload"] {
            switch entry.value {
            case .string(let text): uploadLimit = text
            case .integer(let number): uploadLimit = String(number)
            case .boolean: throw .wrongType(file: file, line: entry.line, key: "limits.upload", expected: "a rate")
            }
        }
        if let entry = values["limits.parallel_files"] {
            guard case .integer(let number) = entry.value, number >= 1 else {
                throw .wrongType(
                    file: file, line: entry.line, key: "limits.parallel_files", expected: "a positive integer")
            }
            parallelFiles = number
        }
    }

    /// Loads `config.toml` from `directory`; no file is an empty configuration.
    static func load(from directory: URL) throws(ConfigError) -> HarpConfig {
        let path = directory.appendingPathComponent("config.toml").path
        guard FileManager.default.fileExists(atPath: path) else { return HarpConfig() }
        guard let data = FileManager.default.contents(atPath: path) else { throw .unreadable(path) }
        return try HarpConfig(text: String(decoding: data, as: UTF8.self), file: path)
    }

    /// The organisation join key from `signal.join_key_file`, which must not be readable by others.
    func joinKey() throws(ConfigError) -> [UInt8]? {
        guard let path = joinKeyFile else { return nil }
        var info = stat()
        guard stat(path, &info) == 0, let data = FileManager.default.contents(atPath: path) else {
            throw .unreadable(path)
        }
        guard info.st_mode & 0o077 == 0 else { throw .tooOpen(path) }
        let key = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return key.isEmpty ? nil : Array(key.utf8)
    }

    static func expandTilde(_ path: String) -> String {
        guard path.hasPrefix("~/") else { return path }
        return BaseDirectories.home() + path.dropFirst()
    }
}

/// A problem with the configuration file.
enum ConfigError: Error, Equatable, CustomStringConvertible {
    case unreadable(String)
    case syntax(file: String, line: Int, why: String)
    case unknownKey(file: String, line: Int, key: String)
    case wrongType(file: String, line: Int, key: String, expected: String)
    case duplicate(file: String, line: Int, key: String)
    case tooOpen(String)

    var description: String {
        switch self {
        case .unreadable(let path): "cannot read \(path)"
        case .syntax(let file, let line, let why): "\(file) line \(line): \(why)"
        case .unknownKey(let file, let line, let key): "\(file) line \(line): unknown key \(key) (see docs/cli.md)"
        case .wrongType(let file, let line, let key, let expected): "\(file) line \(line): \(key) must be \(expected)"
        case .duplicate(let file, let line, let key): "\(file) line \(line): \(key) is set twice"
        case .tooOpen(let path): "\(path) is readable by others; chmod 600 it"
        }
    }
}

/// The TOML subset of `config.toml`.
enum TOMLSubset {
    enum Value: Equatable {
        case string(String)
        case integer(Int)
        case boolean(Bool)
    }

    /// Dotted keys ("table.key") to values and their line numbers.
    static func parse(_ text: String, file: String) throws(ConfigError) -> [String: (value: Value, line: Int)] {
        var result: [String: (value: Value, line: Int)] = [:]
        var table = ""
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = index + 1
            let content = stripComment(raw).trimmingCharacters(in: .whitespaces)
            if content.isEmpty { continue }
            if content.hasPrefix("[") {
                guard content.hasSuffix("]"), !content.hasPrefix("[["),
                    let name = bareKey(content.dropFirst().dropLast())
                else { throw .syntax(file: file, line: line, why: "a table header is [name]") }
                table = name
                continue
            }
            guard let equals = content.firstIndex(of: "="), let key = bareKey(content[..<equals]) else {
                throw .syntax(file: file, line: line, why: "expected key = value")
            }
            let valueText = content[content.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard let value = parseValue(valueText) else {
                throw .syntax(file: file, line: line, why: "\(key): a string in quotes, an integer, true or false")
            }
            let full = table.isEmpty ? key : table + "." + key
            guard result[full] == nil else { throw .duplicate(file: file, line: line, key: full) }
            result[full] = (value, line)
        }
        return result
    }

    private static func bareKey(_ text: Substring) -> String? {
        let key = text.trimmingCharacters(in: .whitespaces)
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
        guard !key.isEmpty, key.allSatisfy(allowed.contains) else { return nil }
        return key
    }

    /// Drops a `#` comment that is not inside a string.
    private static func stripComment(_ line: Substring) -> Substring {
        var quote: Character?
        var escaped = false
        for index in line.indices {
            let character = line[index]
            if let open = quote {
                if escaped {
                    escaped = false
                } else if character == "\\" && open == "\"" {
                    escaped = true
                } else if character == open {
                    quote = nil
                }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == "#" {
                return line[..<index]
            }
        }
        return line
    }

    private static func parseValue(_ text: String) -> Value? {
        if text == "true" { return .boolean(true) }
        if text == "false" { return .boolean(false) }
        if let number = Int(text.replacingOccurrences(of: "_", with: "")), !text.hasPrefix("_") {
            return .integer(number)
        }
        if text.count >= 2, text.hasPrefix("'"), text.hasSuffix("'") {
            let inner = text.dropFirst().dropLast()
            return inner.contains("'") ? nil : .string(String(inner))
        }
        guard text.count >= 2, text.hasPrefix("\""), text.hasSuffix("\"") else { return nil }
        var out = ""
        var iterator = text.dropFirst().dropLast().makeIterator()
        while let character = iterator.next() {
            if character == "\"" { return nil }
            guard character == "\\" else {
                out.append(character)
                continue
            }
            switch iterator.next() {
            case "\"": out.append("\"")
            case "\\": out.append("\\")
            case "n": out.append("\n")
            case "t": out.append("\t")
            default: return nil
            }
        }
        return .string(out)
    }
}
