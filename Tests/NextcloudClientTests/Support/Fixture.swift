import Foundation
import HTTPTypes
import Testing

@testable import NextcloudClient

/// One recorded exchange from `Fixtures/NNN-name.http` (see Fixtures/README.md for the format).
struct Fixture: Sendable {
    let name: String
    let requestLine: String
    let requestHeaders: HTTPFields
    let requestBody: String
    let status: Int
    let responseHeaders: HTTPFields
    let body: Data

    var method: String { String(requestLine.split(separator: " ").first ?? "") }
    var requestPath: String { String(requestLine.split(separator: " ").dropFirst().first ?? "") }
    var bodyText: String { String(decoding: body, as: UTF8.self) }

    static let directory: URL = {
        guard let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            preconditionFailure("Fixtures are missing from the test bundle")
        }
        return url
    }()

    /// Every `.http` fixture, sorted by name.
    static let all: [Fixture] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".http") }.sorted().compactMap { try? Fixture(named: $0) }
    }()

    /// The fixture whose file name starts with `prefix` (e.g. "004").
    static func named(_ prefix: String) throws -> Fixture {
        try #require(all.first { $0.name.hasPrefix(prefix) }, "no fixture \(prefix)")
    }

    init(named name: String) throws {
        self.name = name
        let text = try String(contentsOf: Fixture.directory.appendingPathComponent(name), encoding: .utf8)
        let parts = text.components(separatedBy: "\n### response\n")
        guard parts.count == 2 else { throw FixtureError.malformed(name) }
        let (requestLine, requestHeaders, requestBody) = try Fixture.splitMessage(parts[0], name: name)
        let (statusLine, responseHeaders, body) = try Fixture.splitMessage(parts[1], name: name)
        let statusParts = statusLine.split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw FixtureError.malformed(name) }
        self.requestLine = requestLine
        self.requestHeaders = requestHeaders
        self.requestBody = requestBody
        self.status = status
        self.responseHeaders = responseHeaders
        // The recording adds one LF after a body that lacked it.
        self.body = Data((body.hasSuffix("\n") ? String(body.dropLast()) : body).utf8)
    }

    private static func splitMessage(_ text: String, name: String) throws -> (String, HTTPFields, String) {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)[...]
        guard let first = lines.popFirst() else { throw FixtureError.malformed(name) }
        var headers = HTTPFields()
        while let line = lines.popFirst(), !line.isEmpty {
            headers.addRawLine(line)
        }
        return (String(first), headers, lines.joined(separator: "\n"))
    }
}

enum FixtureError: Error {
    case malformed(String)
}

/// The index of the recording, `Fixtures/index.json`.
struct FixtureIndexEntry: Decodable, Sendable {
    let file: String
    let method: String
    let path: String
    let user: String
    let status: Int
    let shows: String

    static func load() throws -> [FixtureIndexEntry] {
        let data = try Data(contentsOf: Fixture.directory.appendingPathComponent("index.json"))
        return try JSONDecoder().decode([FixtureIndexEntry].self, from: data)
    }
}
