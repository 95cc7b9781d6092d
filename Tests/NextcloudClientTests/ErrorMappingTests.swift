import Foundation
import Testing

@testable import NextcloudClient

/// Every recorded error answer maps to the kind a user must tell apart.
@Suite("Error mapping")
struct ErrorMappingTests {
    static let errorFixtures = Fixture.all.filter { $0.status >= 400 }

    @Test("every recorded error status maps to its kind", arguments: errorFixtures.map(\.name))
    func mapsRecordedErrors(name: String) throws {
        let fixture = try Fixture(named: name)
        let error = NextcloudClient.errorFor(status: fixture.status, body: fixture.body, path: "/x")
        let expected: NextcloudError.Kind =
            switch fixture.status {
            case 401: .badCredentials
            case 403: .forbidden
            case 404: .notFoundOrNoAccess
            case 405, 409: .conflict
            case 412: .preconditionFailed
            case 416: .rangeNotSatisfiable
            case 423: .locked
            case 429: .throttled
            case 507: .quotaExceeded
            default: .unexpectedStatus
            }
        #expect(error.kind == expected)
        #expect(error.status == fixture.status)
        #expect(!error.description.contains("\n"))
        // DAV error bodies arrive without Content-Length; the parser does not need it.
        if fixture.bodyText.contains("<d:error") {
            #expect(DAVErrorBody(fixture.body) != nil)
        }
    }

    @Test func notFoundSaysBoth() throws {
        let fixture = try Fixture.named("011")
        #expect(fixture.responseHeaders[.contentLength] == nil)
        let error = NextcloudClient.errorFor(status: 404, body: fixture.body, path: "/Footage")
        #expect(error.description.contains("Not found, or you have no access"))
        #expect(error.detail == "File not found: Footage in 'alice'")
    }

    @Test func sabreDetails() throws {
        let range = NextcloudClient.errorFor(status: 416, body: try Fixture.named("026").body, path: "/f")
        #expect(range.detail?.contains("exceeded the size of the entity") == true)
        let quota = NextcloudClient.errorFor(status: 507, body: try Fixture.named("074").body, path: "/f")
        #expect(quota.kind == .quotaExceeded)
        #expect(quota.detail?.contains("Insufficient space") == true)
        // Empty s:message: the exception's short name stands in.
        let forbidden = NextcloudClient.errorFor(status: 403, body: try Fixture.named("038").body, path: "/f")
        #expect(forbidden.detail == "Forbidden")
        let csrf = NextcloudClient.errorFor(status: 412, body: try Fixture.named("077").body, path: "/ocs")
        #expect(csrf.detail == "CSRF check failed")
        let throttled = NextcloudClient.errorFor(status: 429, body: try Fixture.named("128").body, path: "/ocs")
        #expect(throttled.detail == "Reached maximum delay")
        #expect(throttled.description.contains("too many failed logins"))
    }

    @Test func everyKindHasAOneLineMessage() {
        for kind in NextcloudError.Kind.allCases {
            let text = NextcloudError(kind, status: 500, path: "/p", detail: "d").description
            #expect(!text.isEmpty && !text.contains("\n"))
        }
        let kinds = Set(NextcloudError.Kind.allCases.map { NextcloudError($0).description })
        #expect(kinds.count == NextcloudError.Kind.allCases.count)
    }

    @Test func redaction() {
        let error = NextcloudError(.badCredentials, status: 401, detail: "password hunter2 is wrong")
        #expect(!error.redacting(["hunter2"]).description.contains("hunter2"))
    }

    @Test func indexMatchesTheFiles() throws {
        let index = try FixtureIndexEntry.load()
        #expect(index.count == Fixture.all.count)
        for entry in index {
            let fixture = try Fixture(named: entry.file)
            #expect(fixture.status == entry.status, "\(entry.file)")
            #expect(fixture.method == entry.method, "\(entry.file)")
        }
    }
}
