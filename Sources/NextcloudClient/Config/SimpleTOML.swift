/// The small part of TOML that harp's credentials file uses: comments, blank lines and
/// `key = "basic string"` lines.
enum SimpleTOML {
    static func parse(_ text: String, file: String) throws(CredentialStoreError) -> [String: String] {
        var table: [String: String] = [:]
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingASCIIWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else { throw .malformed(file: file, line: number + 1) }
            let key = String(line[..<equals].trimmingASCIIWhitespace())
            let valueText = line[line.index(after: equals)...].trimmingASCIIWhitespace()
            guard !key.isEmpty, let value = unquote(valueText) else { throw .malformed(file: file, line: number + 1) }
            table[key] = value
        }
        return table
    }

    static func render(_ pairs: [(String, String)]) -> String {
        "# harp login; keep this file private (0600)\n"
            + pairs.map { "\($0.0) = \(quote($0.1))\n" }.joined()
    }

    static func quote(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    private static func unquote(_ text: Substring) -> String? {
        guard text.count >= 2, text.first == "\"", text.last == "\"" else { return nil }
        var out = ""
        var scalars = text.dropFirst().dropLast().unicodeScalars.makeIterator()
        while let scalar = scalars.next() {
            if scalar == "\"" { return nil }
            guard scalar == "\\" else {
                out.unicodeScalars.append(scalar)
                continue
            }
            switch scalars.next() {
            case "\"": out += "\""
            case "\\": out += "\\"
            case "n": out += "\n"
            case "t": out += "\t"
            case "r": out += "\r"
            case "u":
                var hex = ""
                for _ in 0..<4 { if let h = scalars.next() { hex.unicodeScalars.append(h) } }
                guard let value = UInt32(hex, radix: 16), let decoded = Unicode.Scalar(value) else { return nil }
                out.unicodeScalars.append(decoded)
            default: return nil
            }
        }
        return out
    }
}
