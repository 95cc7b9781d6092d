import Foundation

/// An OCS payload with ordered keys, rendered as JSON (`format=json`) or as Nextcloud's indented XML.
indirect enum OCSValue: Sendable {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case null
    case array([OCSValue])
    case object([(String, OCSValue)])

    // MARK: JSON

    /// JSON as PHP's json_encode writes it (slashes escaped).
    var json: String {
        switch self {
        case .string(let string): return Self.jsonString(string)
        case .int(let value): return String(value)
        case .bool(let value): return value ? "true" : "false"
        case .null: return "null"
        case .array(let values): return "[" + values.map(\.json).joined(separator: ",") + "]"
        case .object(let pairs):
            return "{" + pairs.map { Self.jsonString($0.0) + ":" + $0.1.json }.joined(separator: ",") + "}"
        }
    }

    static func jsonString(_ string: String) -> String {
        var result = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "/": result += "\\/"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 {
                    result += String(format: "\\u%04x", scalar.value)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }

    // MARK: XML

    /// The children of `<data>` (or of any element), one space of indent per level; lists are `<element>` items,
    /// true is `1`, false an empty element, null and empty lists self-closing (079, 085).
    func xml(name: String, indent: Int) -> String {
        let pad = String(repeating: " ", count: indent)
        switch self {
        case .string(let string): return "\(pad)<\(name)>\(XML.escape(string))</\(name)>\n"
        case .int(let value): return "\(pad)<\(name)>\(value)</\(name)>\n"
        case .bool(let value): return "\(pad)<\(name)>\(value ? "1" : "")</\(name)>\n"
        case .null: return "\(pad)<\(name)/>\n"
        case .array(let values):
            if values.isEmpty { return "\(pad)<\(name)/>\n" }
            return "\(pad)<\(name)>\n" + values.map { $0.xml(name: "element", indent: indent + 1) }.joined()
                + "\(pad)</\(name)>\n"
        case .object(let pairs):
            if pairs.isEmpty { return "\(pad)<\(name)/>\n" }
            return "\(pad)<\(name)>\n" + pairs.map { Self.xmlMember($0.0, $0.1, indent: indent + 1) }.joined()
                + "\(pad)</\(name)>\n"
        }
    }

    /// Like PHP's OCS XML writer: numeric keys become `<element>`, a `$comment` key becomes an XML comment.
    static func xmlMember(_ key: String, _ value: OCSValue, indent: Int) -> String {
        if key == "$comment", case .string(let text) = value {
            return String(repeating: " ", count: indent) + "<!--" + text.replacingOccurrences(of: "--", with: "- -")
                + "-->\n"
        }
        let isNumeric = !key.isEmpty && key.allSatisfy(\.isNumber)
        return value.xml(name: isNumeric ? "element" : key, indent: indent)
    }

    subscript(key: String) -> OCSValue? {
        if case .object(let pairs) = self { return pairs.first { $0.0 == key }?.1 }
        return nil
    }

    /// Replaces the value at a key path (objects only); used to patch the capabilities template.
    func setting(_ path: [String], to value: OCSValue) -> OCSValue {
        guard let key = path.first, case .object(var pairs) = self else { return path.isEmpty ? value : self }
        if let index = pairs.firstIndex(where: { $0.0 == key }) {
            pairs[index].1 = pairs[index].1.setting(Array(path.dropFirst()), to: value)
        } else if path.count == 1 {
            pairs.append((key, value))
        }
        return .object(pairs)
    }

    // MARK: Parsing (for the built-in capabilities template)

    /// Parses JSON keeping key order. Returns nil on malformed input.
    static func parse(json: String) -> OCSValue? {
        var parser = JSONScanner(Array(json.utf8))
        let value = parser.value()
        parser.skipSpace()
        return parser.index == parser.bytes.count ? value : nil
    }
}

private struct JSONScanner {
    let bytes: [UInt8]
    var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func skipSpace() {
        while index < bytes.count, [0x20, 0x0a, 0x0d, 0x09].contains(bytes[index]) { index += 1 }
    }

    mutating func value() -> OCSValue? {
        skipSpace()
        guard index < bytes.count else { return nil }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            index += 1
            var pairs: [(String, OCSValue)] = []
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(pairs) }
            while true {
                skipSpace()
                guard case .string(let key)? = string(), expect(":"), let item = value() else { return nil }
                pairs.append((key, item))
                skipSpace()
                if expect(",") { continue }
                return expect("}") ? .object(pairs) : nil
            }
        case UInt8(ascii: "["):
            index += 1
            var items: [OCSValue] = []
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
            while true {
                guard let item = value() else { return nil }
                items.append(item)
                skipSpace()
                if expect(",") { continue }
                return expect("]") ? .array(items) : nil
            }
        case UInt8(ascii: "\""): return string()
        case UInt8(ascii: "t"): return literal("true", .bool(true))
        case UInt8(ascii: "f"): return literal("false", .bool(false))
        case UInt8(ascii: "n"): return literal("null", .null)
        default:
            let start = index
            while index < bytes.count,
                (bytes[index] >= 0x30 && bytes[index] <= 0x39) || bytes[index] == UInt8(ascii: "-")
            {
                index += 1
            }
            return Int64(String(decoding: bytes[start..<index], as: UTF8.self)).map { .int($0) }
        }
    }

    mutating func expect(_ character: Character) -> Bool {
        skipSpace()
        guard index < bytes.count, bytes[index] == character.asciiValue else { return false }
        index += 1
        return true
    }

    mutating func literal(_ word: String, _ value: OCSValue) -> OCSValue? {
        let utf8 = Array(word.utf8)
        guard index + utf8.count <= bytes.count, Array(bytes[index..<index + utf8.count]) == utf8 else { return nil }
        index += utf8.count
        return value
    }

    mutating func string() -> OCSValue? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        index += 1
        var scalars = String.UnicodeScalarView()
        var raw: [UInt8] = []
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if byte == UInt8(ascii: "\"") {
                scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
                return .string(String(scalars))
            }
            if byte == UInt8(ascii: "\\"), index < bytes.count {
                scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
                raw.removeAll()
                let escaped = bytes[index]
                index += 1
                switch escaped {
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "u"):
                    guard index + 4 <= bytes.count,
                        let code = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16),
                        let scalar = Unicode.Scalar(code)
                    else { return nil }
                    index += 4
                    scalars.append(scalar)
                default: scalars.append(Unicode.Scalar(escaped))
                }
                continue
            }
            raw.append(byte)
        }
        return nil
    }
}
