import Foundation
import HTTPTypes
import Testing

@testable import NextcloudClient

@Suite("Headers, ranges and permission letters")
struct HeaderRangePermissionTests {
    @Test func headerNamesAreCaseInsensitive() throws {
        let put = try Fixture.named("032")
        // The fixture spells it `Content-type`, as Nextcloud does on empty answers.
        #expect(put.responseHeaders[try name("content-type")] == "text/html; charset=UTF-8")
        #expect(put.responseHeaders[try name("CONTENT-TYPE")] == put.responseHeaders[.contentType])
        #expect(put.responseHeaders[try name("oc-fileid")]?.hasPrefix("00000") == true)
        let result = NextcloudClient.uploadResult(ResponseHead(status: put.status, headers: put.responseHeaders))
        #expect(result.created)
        #expect(result.fileID == 111)
        #expect(result.etag?.hasPrefix("\"") == true)
        // HEAD repeats some headers; every value is kept.
        let head = try Fixture.named("020")
        #expect(head.responseHeaders[values: .ocChecksum].count == 2)
    }

    @Test func rawHeaderLinesFromTheWire() {
        var headers = HTTPFields()
        headers.addRawLine("content-range:  bytes 0-15/4096\r\n")
        headers.addRawLine("HTTP/1.1 206 Partial Content\r\n")
        headers.addRawLine("\r\n")
        #expect(headers[.contentRange] == "bytes 0-15/4096")
        #expect(Array(headers).count == 1)
    }

    @Test(
        "Content-Range of the recorded 206 answers",
        arguments: [
            ("021", 0, 15), ("022", 524_288, 524_303), ("023", 1_048_575, 1_048_575), ("024", 1_048_566, 1_048_575),
            ("025", 1_048_570, 1_048_575), ("028", 0, 15),
        ])
    func contentRanges(prefix: String, first: Int64, last: Int64) throws {
        let fixture = try Fixture.named(prefix)
        #expect(fixture.status == 206)
        let value = try #require(fixture.responseHeaders[.contentRange])
        let parsed = try #require(ContentRange(headerValue: value))
        #expect(parsed == .satisfied(try #require(ByteRange(first: first, last: last)), total: 1_048_576))
        #expect(fixture.responseHeaders[.contentLength] == String(last - first + 1))
    }

    @Test func contentRangeEdgeCases() {
        #expect(ContentRange(headerValue: "bytes */1048576") == .unsatisfied(total: 1_048_576))
        #expect(ContentRange(headerValue: "bytes 0-9/*") == .satisfied(ByteRange(first: 0, last: 9)!, total: nil))
        #expect(ContentRange(headerValue: "bytes 9-0/100") == nil)
        #expect(ContentRange(headerValue: "bytes 0-100/100") == nil)
        #expect(ContentRange(headerValue: "bytes 0-1,4-5/100") == nil)
        #expect(ContentRange(headerValue: "items 0-1/100") == nil)
        #expect(ContentRange(headerValue: "bytes -1-5/100") == nil)
        #expect(ContentRange(headerValue: "bytes 99999999999999999999-1/2") == nil)
        #expect(ByteRange(first: 5, last: 4) == nil)
        #expect(ByteRange(offset: 10, length: 6)?.headerValue == "bytes=10-15")
    }

    @Test func multiRangeAndStaleIfRangeGetTheWholeFile() throws {
        for prefix in ["027", "031"] {
            let fixture = try Fixture.named(prefix)
            #expect(fixture.status == 200)
            #expect(fixture.responseHeaders[.contentRange] == nil)
        }
    }

    @Test func permissionLetters() {
        #expect(Permissions(letters: "") == .read)
        #expect(Permissions(letters: "RGDNVW") == [.read, .share, .delete, .rename, .move, .write])
        #expect(
            Permissions(letters: "RGDNVCK") == [.read, .share, .delete, .rename, .move, .createFile, .createFolder])
        #expect(Permissions(letters: "SG") == [.read, .shared])
        #expect(Permissions(letters: "SGDNV").contains(.move))
        #expect(Permissions(letters: "MG").contains(.mounted))
        #expect(Permissions.unknownLetters(in: "RGZ") == "Z")
        #expect(Permissions(letters: "RGDNVW").letters == "RGDNVW")
        #expect(Permissions(letters: "SGDN").letters == "SGDN")
        #expect(!Permissions(letters: "SG").canModifyContent)
        #expect(Permissions(letters: "CK").canModifyContent)
    }

    @Test func everyRecordedPermissionHeaderParses() throws {
        let permissions = try name("X-NC-Permissions")
        for fixture in Fixture.all {
            for letters in fixture.responseHeaders[values: permissions] {
                #expect(Permissions.unknownLetters(in: letters).isEmpty, "\(fixture.name): \(letters)")
            }
        }
    }

    @Test func dates() {
        #expect(HTTPDate.parse("Tue, 14 Nov 2023 22:13:20 GMT") == Date(timeIntervalSince1970: 1_700_000_000))
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == Date(timeIntervalSince1970: 784_111_777))
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 PST") == nil)
        #expect(HTTPDate.parse("yesterday") == nil)
    }

    @Test func pathEncoding() {
        #expect(PathEncoding.encodePath("/A B/ü+#?") == "/A%20B/%C3%BC%2B%23%3F")
        #expect(PathEncoding.normalize("a//b/./../c/") == "/a/b/c")
        #expect(PathEncoding.normalize("") == "/")
    }
}

/// A header name as a test spells it, in any case.
private func name(_ text: String) throws -> HTTPField.Name {
    try #require(HTTPField.Name(text))
}
