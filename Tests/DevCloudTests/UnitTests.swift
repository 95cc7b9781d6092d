import Foundation
import Logging
import Testing

@testable import DevCloud

/// Pure pieces: range parsing, OCS rendering, configuration loading.
@Suite("DevCloud units")
struct UnitTests {
    @Test(
        "byte ranges",
        arguments: [
            ("bytes=0-15", ByteRange.Parsed.range(ByteRange(start: 0, end: 15))),
            ("bytes=10-", .range(ByteRange(start: 10, end: 99))),
            ("bytes=-10", .range(ByteRange(start: 90, end: 99))),
            ("bytes=-1000", .range(ByteRange(start: 0, end: 99))),
            ("bytes=90-1000", .range(ByteRange(start: 90, end: 99))),
            ("bytes=100-200", .unsatisfiable(start: 100)),
            ("bytes=0-9,20-29", .none),
            ("bytes=5-2", .none),
            ("items=0-1", .none),
            ("bytes=x-1", .none),
        ])
    func ranges(header: String, expected: ByteRange.Parsed) {
        #expect(ByteRange.parse(header, size: 100) == expected)
    }

    @Test("OCS XML: booleans, nulls, empty lists, numeric keys and $comment as Nextcloud writes them")
    func ocsXML() {
        let value = OCSValue.object([
            ("yes", .bool(true)), ("no", .bool(false)), ("none", .null), ("list", .array([])),
            ("flags", .object([("1", .string("One")), ("$comment", .string("a -- note"))])), ("text", .string("a<b")),
        ])
        #expect(
            value.xml(name: "data", indent: 1)
                == " <data>\n  <yes>1</yes>\n  <no></no>\n  <none/>\n  <list/>\n  <flags>\n   <element>One</element>\n"
                + "   <!--a - - note-->\n  </flags>\n  <text>a&lt;b</text>\n </data>\n")
        #expect(OCSValue.string("a/b\"c").json == #""a\/b\"c""#)
    }

    @Test("the ordered JSON parser keeps key order and types")
    func jsonParser() throws {
        let value = try #require(OCSValue.parse(json: #"{"b":1,"a":[true,null,"x\u00e9"],"c":{"d":-3}}"#))
        #expect(value.json == #"{"b":1,"a":[true,null,"xé"],"c":{"d":-3}}"#)
        #expect(OCSValue.parse(json: "{\"a\":") == nil)
    }

    @Test("configuration files: defaults, relative data directory")
    func configurationFile() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("devcloud-conf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("devcloud.json")
        try Data(
            #"{"dataDirectory":"data","users":[{"name":"alice","password":"pw"}],"egressBytesPerSecond":1000}"#.utf8
        )
        .write(to: file)
        let configuration = try DevCloudConfiguration.load(path: file.path)
        #expect(configuration.dataDirectory == folder.appendingPathComponent("data").path)
        #expect(configuration.users == [.init(name: "alice", password: "pw")])
        #expect(configuration.users.first?.displayName == "alice")
        #expect(configuration.shares.isEmpty && configuration.egressBytesPerSecond == 1000)
        #expect(configuration.bruteForceMaxFailures == 11 && configuration.autoGrantLoginFlowUser == nil)
    }

    @Test("folder etags change when something below changes; a PROPPATCH changes no etag")
    func etagPropagation() async throws {
        let server = try await TestServer(folders: ["alice": ["A/B"]])
        func etag(_ path: String) async throws -> String {
            let body = #"<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>"#
            let result = try await server.request(
                "PROPFIND", "/remote.php/dav/files/alice/\(path)", as: "alice", headers: [("Depth", "0")],
                body: Array(body.utf8))
            return result.text.components(separatedBy: "<d:getetag>").last?.components(separatedBy: "<").first ?? ""
        }
        _ = try await server.request("PUT", "/remote.php/dav/files/alice/A/sibling.txt", as: "alice", body: [1])
        let (a1, b1, sibling1) = (try await etag("A"), try await etag("A/B"), try await etag("A/sibling.txt"))
        _ = try await server.request("PUT", "/remote.php/dav/files/alice/A/B/new.txt", as: "alice", body: [2])
        let (a2, b2, sibling2) = (try await etag("A"), try await etag("A/B"), try await etag("A/sibling.txt"))
        #expect(a1 != a2 && b1 != b2 && sibling1 == sibling2)
        #expect(a2.count == 13 + 12 && sibling2.count == 32 + 12, "quoted as &quot;...&quot;")
        let patch =
            #"<d:propertyupdate xmlns:d="DAV:" xmlns:h="https://harp.invalid/ns"><d:set><d:prop><h:x>1</h:x></d:prop></d:set></d:propertyupdate>"#
        #expect(
            try await server.request(
                "PROPPATCH", "/remote.php/dav/files/alice/A/sibling.txt", as: "alice", body: Array(patch.utf8)
            )
            .status == 207)
        let (sibling3, a3) = (try await etag("A/sibling.txt"), try await etag("A"))
        #expect(sibling3 == sibling2 && a3 == a2)
        await server.stop()
    }

    @Test("OCS v1 answers HTTP 200 with statuscode 100 for OK, v2 with 200")
    func ocsEnvelopes() async throws {
        let server = try await TestServer()
        let ocs = [("OCS-APIRequest", "true")]
        let v1 = try await server.request("GET", "/ocs/v1.php/cloud/user?format=json", as: "carol", headers: ocs)
        #expect(v1.status == 200 && v1.text.contains(#""statuscode":100"#) && v1.text.contains(#""itemsperpage":"""#))
        let v2 = try await server.request("GET", "/ocs/v2.php/cloud/user", as: "carol", headers: ocs)
        #expect(v2.status == 200 && v2.text.contains("<statuscode>200</statuscode>") && v2.text.hasPrefix("<?xml"))
        let missing = try await server.request(
            "GET", "/ocs/v1.php/apps/files_sharing/api/v1/shares/7", as: "carol", headers: ocs)
        #expect(missing.status == 200 && missing.text.contains("<statuscode>404</statuscode>"))
        let unauthenticated = try await server.request("GET", "/ocs/v2.php/cloud/user", headers: ocs)
        #expect(unauthenticated.status == 401 && unauthenticated.text.contains("<statuscode>997</statuscode>"))
        await server.stop()
    }
}
