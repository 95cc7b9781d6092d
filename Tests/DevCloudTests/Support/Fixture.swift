import Foundation

/// One recorded exchange (`NNN-name.http`): the request as sent and Nextcloud's answer.
struct Fixture {
    var file: String
    var method: String
    var target: String
    var requestHeaders: [(String, String)]
    var requestBody: String
    var status: Int
    var responseHeaders: [(String, String)]
    var responseBody: String

    static var directory: URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    }

    static func all() throws -> [Fixture] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".http") }
        return try names.sorted().map { try load($0) }
    }

    static func load(_ name: String) throws -> Fixture {
        let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
        guard let split = text.range(of: "\n### response\n") else {
            throw RawHTTPError(description: "\(name): no response")
        }
        let request = String(text[..<split.lowerBound])
        let response = String(text[split.upperBound...])
        let (requestLine, requestHeaders, requestBody) = parts(request)
        let (statusLine, responseHeaders, responseBody) = parts(response)
        let requestWords = requestLine.split(separator: " ")
        let statusWords = statusLine.split(separator: " ")
        return Fixture(
            file: name, method: String(requestWords[0]), target: String(requestWords[1]),
            requestHeaders: requestHeaders, requestBody: requestBody, status: Int(statusWords[1]) ?? 0,
            responseHeaders: responseHeaders, responseBody: responseBody)
    }

    private static func parts(_ block: String) -> (String, [(String, String)], String) {
        let headEnd = block.range(of: "\n\n")
        let head = headEnd.map { String(block[..<$0.lowerBound]) } ?? block.trimmingCharacters(in: .newlines)
        var body = headEnd.map { String(block[$0.upperBound...]) } ?? ""
        if body.hasSuffix("\n") { body.removeLast() }
        var lines = head.components(separatedBy: "\n")
        let first = lines.removeFirst()
        let headers: [(String, String)] = lines.compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return (first, headers, body)
    }

    func responseHeader(_ name: String) -> String? {
        responseHeaders.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    func requestHeader(_ name: String) -> String? {
        requestHeaders.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    /// `<binary body: N bytes, shown as hex: H>` or `<binary body truncated: N bytes, sha1 S, ...>`.
    struct BinaryBody {
        var count: Int
        var hex: String?
        var sha1: String?
    }

    static func binary(_ body: String) -> BinaryBody? {
        guard body.hasPrefix("<binary body") else { return nil }
        let scanner = body.components(separatedBy: CharacterSet(charactersIn: " ,:>"))
        guard let countIndex = scanner.firstIndex(of: "bytes"), countIndex > 0, let count = Int(scanner[countIndex - 1])
        else { return nil }
        var result = BinaryBody(count: count)
        if let range = body.range(of: "shown as hex: ") {
            result.hex = String(body[range.upperBound...].prefix { $0.isHexDigit })
        }
        if let range = body.range(of: "sha1 ") {
            result.sha1 = String(body[range.upperBound...].prefix { $0.isHexDigit })
        }
        return result
    }
}
