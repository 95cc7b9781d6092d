internal import Foundation

/// Why harp refuses to use one `d:href` of a listing.
///
/// A server (or anyone who can answer in its name) chooses every href; a client that maps hrefs to local paths must
/// refuse any name that could leave the folder being fetched (docs/threat-model.md, "The Nextcloud server").
public enum HrefRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    /// Not an absolute path (or URL), or a `%` escape that is not two hex digits, or not UTF-8 once decoded.
    case notAPath
    /// The href does not start with the user's root (`/remote.php/dav/files/USER`).
    case outsideRoot
    /// An empty name (`//`).
    case emptySegment
    /// A name that is `.` or `..` once percent-decoded.
    case dotSegment
    /// A name holding `/` (sent as `%2F`), `\`, NUL or another control character once percent-decoded.
    case forbiddenCharacter(UInt8)
    /// A name longer than `HrefPath.maximumNameBytes` bytes of UTF-8.
    case nameTooLong(Int)
    /// A Depth 1 answer named something that is not a direct child of the folder asked for.
    case notInFolder
    /// The same path twice in one listing (the first one is used).
    case duplicate
    /// A folder nested deeper below the walked folder than `WalkLimits.maximumDepth` (not listed).
    case tooDeep(Int)

    public var description: String {
        switch self {
        case .notAPath: "not an absolute path with valid percent-encoding and UTF-8"
        case .outsideRoot: "it lies outside your files (/remote.php/dav/files/USER/)"
        case .emptySegment: "it has an empty name (//)"
        case .dotSegment: "one of its names is `.` or `..` after percent-decoding"
        case .forbiddenCharacter(let byte):
            byte == UInt8(ascii: "/")
                ? "one of its names holds `/` (%2F) after percent-decoding"
                : byte == UInt8(ascii: "\\")
                    ? "one of its names holds a backslash"
                    : "one of its names holds the control character 0x\(String(byte, radix: 16))"
        case .nameTooLong(let bytes):
            "one of its names is \(bytes) bytes long (at most \(HrefPath.maximumNameBytes))"
        case .notInFolder: "it is not a direct child of the folder listed"
        case .duplicate: "the listing names it twice"
        case .tooDeep(let depth): "it is \(depth) folders deep, more than harp walks"
        }
    }
}

/// Maps an href to a path below the user's root, one name at a time: each name is percent-decoded on its own and
/// checked, so that no name can be `.`, `..`, empty, or hold a `/`, `\` or control character.
enum HrefPath {
    /// The longest name a Linux file system takes (NAME_MAX), and Nextcloud's own limit.
    static let maximumNameBytes = 255

    /// The names of the path below `rootHref` (percent-decoded, e.g. `/remote.php/dav/files/alice`), in order; empty
    /// for the root itself. One trailing `/` (a folder) is allowed.
    static func segments(href: String, rootHref: String) -> Result<[String], HrefRefusal> {
        var encoded = href
        if let url = URL(string: href), url.scheme != nil {
            encoded = url.path(percentEncoded: true)
        }
        guard encoded.hasPrefix("/") else { return .failure(.notAPath) }
        var parts = encoded.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst()
        if parts.count > 1, parts.last?.isEmpty == true { parts = parts.dropLast() }
        if parts.count == 1, parts.first?.isEmpty == true { parts = [] }  // the href `/`
        var names: [String] = []
        names.reserveCapacity(parts.count)
        for part in parts {
            guard let bytes = percentDecoded(part), let name = String(validating: bytes, as: UTF8.self) else {
                return .failure(.notAPath)
            }
            names.append(name)
        }
        let root = rootHref.split(separator: "/").map(String.init)
        guard names.count >= root.count, zip(names, root).allSatisfy({ Array($0.utf8) == Array($1.utf8) }) else {
            return .failure(.outsideRoot)
        }
        let below = Array(names.dropFirst(root.count))
        for name in below {
            if let refusal = check(name) { return .failure(refusal) }
        }
        return .success(below)
    }

    /// Why `name` cannot be one name of a path, or nil when it can.
    static func check(_ name: String) -> HrefRefusal? {
        let bytes = Array(name.utf8)
        if bytes.isEmpty { return .emptySegment }
        if bytes == [0x2E] || bytes == [0x2E, 0x2E] { return .dotSegment }
        if let bad = bytes.first(where: {
            $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "\\")
        }) {
            return .forbiddenCharacter(bad)
        }
        if bytes.count > maximumNameBytes { return .nameTooLong(bytes.count) }
        return nil
    }

    /// `%XY` escapes turned into bytes; nil for a `%` not followed by two hex digits.
    private static func percentDecoded(_ encoded: Substring.UTF8View) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(encoded.count)
        var index = encoded.startIndex
        while index < encoded.endIndex {
            let byte = encoded[index]
            guard byte == UInt8(ascii: "%") else {
                out.append(byte)
                index = encoded.index(after: index)
                continue
            }
            let high = encoded.index(after: index)
            guard high < encoded.endIndex else { return nil }
            let low = encoded.index(after: high)
            guard low < encoded.endIndex, let h = hexValue(encoded[high]), let l = hexValue(encoded[low]) else {
                return nil
            }
            out.append(h << 4 | l)
            index = encoded.index(after: low)
        }
        return out
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// `href` as it may be shown in a message: control characters escaped, and at most 200 characters (the first and
    /// last 100 of a longer one, so the file name at its end shows).
    static func printable(_ href: String) -> String {
        func escaped(_ scalars: some Sequence<Unicode.Scalar>) -> String {
            var out = ""
            for scalar in scalars {
                if scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value) {
                    out += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
            return out
        }
        let scalars = href.unicodeScalars
        guard scalars.count > 200 else { return escaped(scalars) }
        return escaped(scalars.prefix(100)) + "…" + escaped(scalars.suffix(100))
    }
}
