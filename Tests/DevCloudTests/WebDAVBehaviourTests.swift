import Foundation
import Testing

@testable import DevCloud

/// DevCloud as a real server on 127.0.0.1 (port 0): reads, writes, shares, chunked upload with resume.
@Suite("WebDAV behaviour over real sockets")
struct WebDAVBehaviourTests {
    static let footageShare = DevCloudConfiguration.Share(
        owner: "alice", path: "/Footage", sharee: "bob", permissions: 1)

    func footageServer() async throws -> (TestServer, [UInt8]) {
        let server = try await TestServer(shares: [Self.footageShare], folders: ["alice": ["Footage"]])
        let (clip, _) = try await server.seedFootage()
        return (server, clip)
    }

    @Test("Range GET of the first, a middle and the last bytes returns exactly those bytes")
    func ranges() async throws {
        let (server, clip) = try await footageServer()
        let path = "/remote.php/dav/files/bob/Footage/clip1.mp4"
        for (range, start, end) in [
            ("bytes=0-15", 0, 15), ("bytes=524288-528383", 524_288, 528_383),
            ("bytes=1048575-1048575", 1_048_575, 1_048_575), ("bytes=-10", 1_048_566, 1_048_575),
            ("bytes=1048570-2000000", 1_048_570, 1_048_575),
        ] {
            let result = try await server.request("GET", path, as: "bob", headers: [("Range", range)])
            #expect(result.status == 206, "\(range)")
            #expect(result.header("Content-Range") == "bytes \(start)-\(end)/1048576", "\(range)")
            #expect(result.body == Array(clip[start...end]), "\(range)")
        }
        let beyond = try await server.request("GET", path, as: "bob", headers: [("Range", "bytes=2000000-2000010")])
        #expect(beyond.status == 416)
        let multi = try await server.request("GET", path, as: "bob", headers: [("Range", "bytes=0-9,20-29")])
        #expect(multi.status == 200 && multi.body == clip)
        await server.stop()
    }

    @Test("conditional GETs: stale If-Match 412, current If-None-Match 304, stale If-Range whole file")
    func conditionals() async throws {
        let (server, clip) = try await footageServer()
        let path = "/remote.php/dav/files/alice/Footage/clip1.mp4"
        let etag = try #require(try await server.request("HEAD", path, as: "alice").header("ETag"))
        #expect(try await server.request("GET", path, as: "alice", headers: [("If-Match", "\"0123\"")]).status == 412)
        #expect(
            try await server.request("GET", path, as: "alice", headers: [("If-Match", etag), ("Range", "bytes=0-0")])
                .status == 206)
        #expect(try await server.request("GET", path, as: "alice", headers: [("If-None-Match", etag)]).status == 304)
        let stale = try await server.request(
            "GET", path, as: "alice", headers: [("Range", "bytes=0-15"), ("If-Range", "\"0123\"")])
        #expect(stale.status == 200 && stale.body == clip)
        await server.stop()
    }

    @Test("a read-only share refuses writes with 403; carol, without a share, gets 404")
    func shareEnforcement() async throws {
        let (server, _) = try await footageServer()
        #expect(
            try await server.request(
                "PUT", "/remote.php/dav/files/bob/Footage/new.txt", as: "bob", body: Array("x".utf8)
            ).status == 403)
        #expect(
            try await server.request(
                "PUT", "/remote.php/dav/files/bob/Footage/clip1.mp4", as: "bob", body: Array("x".utf8)
            ).status == 403)
        #expect(
            try await server.request("DELETE", "/remote.php/dav/files/bob/Footage/clip1.mp4", as: "bob").status == 403)
        #expect(try await server.request("MKCOL", "/remote.php/dav/files/bob/Footage/sub", as: "bob").status == 403)
        #expect(try await server.request("GET", "/remote.php/dav/files/bob/Footage/clip1.mp4", as: "bob").status == 200)
        #expect(
            try await server.request(
                "PROPFIND", "/remote.php/dav/files/alice/Footage", as: "carol", headers: [("Depth", "0")]
            ).status == 404)
        #expect(
            try await server.request("GET", "/remote.php/dav/files/alice/Footage/clip1.mp4", as: "carol").status == 404)
        #expect(
            try await server.request("GET", "/remote.php/dav/files/carol/Footage/clip1.mp4", as: "carol").status == 404)
        #expect(
            try await server.request("GET", "/remote.php/dav/files/alice/Footage/clip1.mp4", as: "bob").status == 404)
        #expect(try await server.request("GET", "/remote.php/dav/files/alice/../bob/x", as: "alice").status == 400)
        let traversal = try await server.request(
            "GET", "/remote.php/dav/files/alice/Footage/%2e%2e/%2e%2e/%2e%2e/devcloud.sqlite", as: "alice")
        #expect(traversal.status == 400)
        await server.stop()
    }

    @Test("a read-write share lets the sharee write, and the owner sees it")
    func readWriteShare() async throws {
        let server = try await TestServer(
            shares: [.init(owner: "alice", path: "/Team", sharee: "carol", permissions: 15)],
            folders: ["alice": ["Team"]])
        let put = try await server.request(
            "PUT", "/remote.php/dav/files/carol/Team/c.txt", as: "carol", body: Array("carol's".utf8))
        #expect(put.status == 201)
        let get = try await server.request("GET", "/remote.php/dav/files/alice/Team/c.txt", as: "alice")
        #expect(get.text == "carol's")
        #expect(get.header("OC-ETag") == put.header("ETag"))
        // Versions name who wrote each one.
        _ = try await server.request(
            "PUT", "/remote.php/dav/files/alice/Team/c.txt", as: "alice", headers: [("X-OC-Mtime", "1700000100")],
            body: Array("alice's".utf8))
        let fileid = Int(try #require(put.header("OC-FileId")).prefix(8))!
        let body =
            #"<d:propfind xmlns:d="DAV:" xmlns:nc="http://nextcloud.org/ns"><d:prop><nc:version-author/></d:prop></d:propfind>"#
        let versions = try await server.request(
            "PROPFIND", "/remote.php/dav/versions/carol/versions/\(fileid)", as: "carol", headers: [("Depth", "1")],
            body: Array(body.utf8))
        #expect(versions.text.contains("<nc:version-author>carol</nc:version-author>"))
        #expect(
            versions.text.contains(
                "/1700000100</d:href><d:propstat><d:prop><nc:version-author>alice</nc:version-author>"))
        await server.stop()
    }

    @Test(
        "PUT overwrite keeps the fileid, changes the etag and keeps the old content as a version; MOVE keeps the fileid"
    )
    func identityAndVersions() async throws {
        let server = try await TestServer(folders: ["alice": ["Docs"]])
        let first = try await server.request(
            "PUT", "/remote.php/dav/files/alice/Docs/a.txt", as: "alice", headers: [("X-OC-Mtime", "1700000000")],
            body: Array("one".utf8))
        let second = try await server.request(
            "PUT", "/remote.php/dav/files/alice/Docs/a.txt", as: "alice", headers: [("X-OC-Mtime", "1700000100")],
            body: Array("two!".utf8))
        #expect(first.status == 201 && second.status == 204)
        #expect(first.header("OC-FileId") == second.header("OC-FileId"))
        #expect(first.header("ETag") != second.header("ETag"))
        let fileid = Int(try #require(first.header("OC-FileId")).prefix(8))!
        let old = try await server.request(
            "GET", "/remote.php/dav/versions/alice/versions/\(fileid)/1700000000", as: "alice")
        #expect(old.status == 200 && old.text == "one")
        let list = try await server.request(
            "PROPFIND", "/remote.php/dav/versions/alice/versions/\(fileid)", as: "alice", headers: [("Depth", "1")])
        #expect(list.text.contains("/1700000000") && list.text.contains("/1700000100"))
        let move = try await server.request(
            "MOVE", "/remote.php/dav/files/alice/Docs/a.txt", as: "alice",
            headers: [("Destination", "http://127.0.0.1:\(server.port)/remote.php/dav/files/alice/b.txt")])
        #expect(move.status == 201)
        #expect(move.header("OC-FileId") == first.header("OC-FileId"))
        await server.stop()
    }

    @Test("taking a lock changes the etag although the content does not change")
    func lockChangesETag() async throws {
        let server = try await TestServer(folders: ["alice": ["L"]])
        _ = try await server.request(
            "PUT", "/remote.php/dav/files/alice/L/doc.txt", as: "alice", body: Array("doc".utf8))
        let before = try await server.request("HEAD", "/remote.php/dav/files/alice/L/doc.txt", as: "alice").header(
            "ETag")
        #expect(
            try await server.request(
                "LOCK", "/remote.php/dav/files/alice/L/doc.txt", as: "alice", headers: [("X-User-Lock", "1")]
            ).status == 200)
        let after = try await server.request("HEAD", "/remote.php/dav/files/alice/L/doc.txt", as: "alice").header(
            "ETag")
        #expect(before != nil && after != nil && before != after)
        await server.stop()
    }

    @Test("chunked upload v2 of 40 MiB, interrupted and resumed from a PROPFIND of the upload folder")
    func chunkedUploadWithResume() async throws {
        let server = try await TestServer(folders: ["alice": ["Footage"]])
        let chunkSize = 10 * 1_048_576
        let content = try TestData.keystream(name: "resume.bin", count: 4 * chunkSize)
        let upload = "/remote.php/dav/uploads/alice/resume-0001"
        let destination = (
            "Destination", "http://127.0.0.1:\(server.port)/remote.php/dav/files/alice/Footage/resume.bin"
        )
        let total = ("OC-Total-Length", String(content.count))
        #expect(try await server.request("MKCOL", upload, as: "alice", headers: [destination]).status == 201)
        for number in 1...2 {
            let body = Array(content[(number - 1) * chunkSize..<number * chunkSize])
            #expect(
                try await server.request(
                    "PUT", "\(upload)/\(number)", as: "alice", headers: [destination, total], body: body
                ).status == 201)
        }
        // The connection breaks during chunk 3.
        try await RawHTTP.sendInterrupted(
            port: server.port, method: "PUT", path: "\(upload)/3",
            headers: [TestServer.basic("alice"), destination, total], declaredLength: chunkSize,
            body: Array(content[2 * chunkSize..<2 * chunkSize + 1_000_000]))
        // Resume: ask the server which chunks it has.
        let listing = try await server.request("PROPFIND", upload, as: "alice", headers: [("Depth", "1")])
        #expect(listing.status == 207)
        let have = Set(
            listing.text.components(separatedBy: "<d:href>").dropFirst().compactMap {
                $0.components(separatedBy: "</d:href>").first?.split(separator: "/").last.map(String.init)
            })
        #expect(have.contains("1") && have.contains("2") && !have.contains("3"))
        #expect(
            listing.text.contains("<d:getcontentlength>\(2 * chunkSize)</d:getcontentlength>"),
            ".file has the sum so far")
        for number in 1...4 where !have.contains(String(number)) {
            let body = Array(content[(number - 1) * chunkSize..<number * chunkSize])
            #expect(
                try await server.request(
                    "PUT", "\(upload)/\(number)", as: "alice", headers: [destination, total], body: body
                ).status == 201)
        }
        let move = try await server.request(
            "MOVE", "\(upload)/.file", as: "alice",
            headers: [
                destination, total, ("X-OC-Mtime", "1700000400"), ("OC-Checksum", "SHA1:" + TestData.sha1Hex(content)),
            ])
        #expect(move.status == 201)
        #expect(
            move.header("OC-FileId") != nil && move.header("ETag") != nil && move.header("X-OC-MTime") == "accepted")
        let get = try await server.request("GET", "/remote.php/dav/files/alice/Footage/resume.bin", as: "alice")
        #expect(get.body.count == content.count && TestData.sha1Hex(get.body) == TestData.sha1Hex(content))
        #expect(get.header("OC-Checksum") == "SHA1:" + TestData.sha1Hex(content))
        #expect(try await server.request("PROPFIND", upload, as: "alice", headers: [("Depth", "0")]).status == 404)
        await server.stop()
    }

    @Test("quota: a PUT larger than the free space gets 507, a chunk of a too-large upload too")
    func quota() async throws {
        let server = try await TestServer(folders: ["alice": ["Q"]])
        try server.server.addUser(.init(name: "alice", password: TestServer.passwords["alice"]!, quotaBytes: 1000))
        #expect(
            try await server.request(
                "PUT", "/remote.php/dav/files/alice/Q/small", as: "alice", body: [UInt8](repeating: 1, count: 500)
            ).status == 201)
        #expect(
            try await server.request(
                "PUT", "/remote.php/dav/files/alice/Q/big", as: "alice", body: [UInt8](repeating: 1, count: 600)
            ).status == 507)
        let destination = ("Destination", "http://127.0.0.1:\(server.port)/remote.php/dav/files/alice/Q/big")
        #expect(
            try await server.request("MKCOL", "/remote.php/dav/uploads/alice/q1", as: "alice", headers: [destination])
                .status == 201)
        #expect(
            try await server.request(
                "PUT", "/remote.php/dav/uploads/alice/q1/1", as: "alice",
                headers: [destination, ("OC-Total-Length", "600")], body: [UInt8](repeating: 1, count: 600)
            ).status == 507)
        await server.stop()
    }

    @Test("names with spaces, ampersands and non-ASCII letters round-trip through hrefs")
    func awkwardNames() async throws {
        let server = try await TestServer(folders: ["alice": ["Ä & b"]])
        let path = "/remote.php/dav/files/alice/%C3%84%20%26%20b/caf%C3%A9%20%3C1%3E.txt"
        #expect(try await server.request("PUT", path, as: "alice", body: Array("x".utf8)).status == 201)
        let listing = try await server.request(
            "PROPFIND", "/remote.php/dav/files/alice/%C3%84%20%26%20b", as: "alice", headers: [("Depth", "1")])
        #expect(listing.text.contains(path))
        #expect(try await server.request("GET", path, as: "alice").text == "x")
        await server.stop()
    }

    @Test("seedFile, a configured share on a fresh data directory, and the legacy /remote.php/webdav root")
    func seedingAndLegacyRoot() async throws {
        let server = try await TestServer(shares: [
            .init(owner: "alice", path: "/New/Deep", sharee: "bob", permissions: 1)
        ])
        let id = try server.server.seedFile(
            owner: "alice", path: "/New/Deep/f.txt", contents: Data("seed".utf8), mtime: 1_700_000_000,
            checksum: "SHA1:x")
        let get = try await server.request("GET", "/remote.php/webdav/Deep/f.txt", as: "bob")
        #expect(get.text == "seed" && get.header("OC-Checksum") == "SHA1:x")
        #expect(get.header("Last-Modified") == "Tue, 14 Nov 2023 22:13:20 GMT")
        let body =
            #"<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:prop><oc:fileid/></d:prop></d:propfind>"#
        let listing = try await server.request(
            "PROPFIND", "/remote.php/webdav/Deep", as: "bob", headers: [("Depth", "1")], body: Array(body.utf8))
        #expect(listing.text.contains("<d:href>/remote.php/webdav/Deep/f.txt</d:href>"))
        #expect(listing.text.contains("<oc:fileid>\(id)</oc:fileid>"))
        await server.stop()
    }

    @Test("a 10 GiB file (sparse, dropped into the data folder) is served by range without loading it")
    func hugeFileRange() async throws {
        let server = try await TestServer(folders: ["alice": ["Big"]])
        let url = server.directory.appendingPathComponent("files/alice/Big/huge.bin")
        let size: UInt64 = 10 * 1024 * 1024 * 1024
        #expect(FileManager.default.createFile(atPath: url.path, contents: nil))
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: size)
        try handle.close()
        let head = try await server.request("HEAD", "/remote.php/dav/files/alice/Big/huge.bin", as: "alice")
        #expect(head.header("Content-Length") == String(size))
        let tail = try await server.request(
            "GET", "/remote.php/dav/files/alice/Big/huge.bin", as: "alice", headers: [("Range", "bytes=-256")])
        #expect(tail.status == 206 && tail.body == [UInt8](repeating: 0, count: 256))
        #expect(tail.header("Content-Range") == "bytes \(size - 256)-\(size - 1)/\(size)")
        await server.stop()
    }

    @Test("Expect: 100-continue is answered at once, so uploads do not stall")
    func expectContinue() async throws {
        let server = try await TestServer(folders: ["alice": ["U"]])
        let (interim, result) = try await RawHTTP.sendExpectingContinue(
            port: server.port, method: "PUT", path: "/remote.php/dav/files/alice/U/a.bin",
            headers: [TestServer.basic("alice")], body: [UInt8](repeating: 9, count: 2_000_000))
        #expect(interim == "HTTP/1.1 100 Continue")
        #expect(result.status == 201)
        await server.stop()
    }

    @Test("bad requests get Nextcloud-like answers, never a crash")
    func badRequests() async throws {
        let (server, _) = try await footageServer()
        let footage = "/remote.php/dav/files/alice/Footage"
        let malformed = try await server.request(
            "PROPFIND", footage, as: "alice", headers: [("Depth", "0")], body: Array("<d:propfind xmlns:d=".utf8))
        #expect(malformed.status == 400 && malformed.text.contains("Sabre\\DAV\\Exception\\BadRequest"))
        let noNamespace = try await server.request(
            "PROPFIND", footage, as: "alice", headers: [("Depth", "0")],
            body: Array(#"<d:propfind xmlns:d="DAV:"><d:prop><plain/><d:getetag/></d:prop></d:propfind>"#.utf8))
        #expect(noNamespace.status == 207 && Shape.xml(noNamespace.text) != nil, "well-formed with a no-namespace prop")
        #expect(try await server.request("REPORT", footage, as: "alice").status == 501)
        #expect(try await server.request("GET", footage + "/", as: "alice").status == 501)
        let moveMount = try await server.request(
            "MOVE", "/remote.php/dav/files/bob/Footage", as: "bob",
            headers: [("Destination", "/remote.php/dav/files/bob/Renamed")])
        #expect(moveMount.status == 403)
        #expect(try await server.request("MOVE", footage + "/clip1.mp4", as: "alice").status == 400)
        #expect(
            try await server.request("PUT", "/remote.php/dav/files/alice/Nope/x", as: "alice", body: [1]).status == 409)
        let badFault = try await server.request(
            "POST", "/harp-devcloud/faults", body: Array(#"{"status":42,"count":1}"#.utf8))
        #expect(badFault.status == 400)
        #expect(try await server.request("GET", "/nowhere").status == 404)
        #expect(
            try await server.request("GET", "/remote.php/dav/versions/alice/versions/999999", as: "alice").status == 404
        )
        #expect(try await server.request("PROPFIND", "/remote.php/dav/uploads/bob/x", as: "alice").status == 404)
        await server.stop()
    }

    @Test("shares follow a moved folder and vanish with a deleted one; user names cannot escape the data folder")
    func sharesFollowTheirNode() async throws {
        let server = try await TestServer(
            shares: [.init(owner: "alice", path: "/Top/Inner", sharee: "bob", permissions: 1)],
            folders: ["alice": ["Top/Inner"]])
        try server.server.seedFile(owner: "alice", path: "/Top/Inner/f.txt", contents: Data("f".utf8))
        let move = try await server.request(
            "MOVE", "/remote.php/dav/files/alice/Top", as: "alice",
            headers: [("Destination", "/remote.php/dav/files/alice/Moved")])
        #expect(move.status == 201)
        #expect(try await server.request("GET", "/remote.php/dav/files/bob/Inner/f.txt", as: "bob").text == "f")
        #expect(try await server.request("DELETE", "/remote.php/dav/files/alice/Moved", as: "alice").status == 204)
        #expect(try await server.request("GET", "/remote.php/dav/files/bob/Inner/f.txt", as: "bob").status == 404)
        #expect(try server.server.store.shares(sharee: "bob").isEmpty)
        #expect(throws: DevCloudError.self) { try server.server.addUser(.init(name: "../escape", password: "x")) }
        await server.stop()
    }
}
