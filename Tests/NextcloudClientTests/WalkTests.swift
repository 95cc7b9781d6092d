import Foundation
import Testing

@testable import NextcloudClient

@Suite("Recursive walk")
struct WalkTests {
    /// folder path → children (name, isFolder)
    static let tree: [String: [(String, Bool)]] = [
        "/": [("A", true), ("f1", false)],
        "/A": [("B", true), ("f2", false)],
        "/A/B": [("f3", false)],
    ]

    static func multistatus(_ folder: String) -> String {
        let prefix = "/remote.php/dav/files/alice"
        func response(_ path: String, _ isFolder: Bool) -> String {
            let href = prefix + (path == "/" ? "/" : path + (isFolder ? "/" : ""))
            let type =
                isFolder
                ? "<d:resourcetype><d:collection/></d:resourcetype>"
                : "<d:resourcetype/><d:getcontentlength>5</d:getcontentlength>"
            return
                "<d:response><d:href>\(href)</d:href><d:propstat><d:prop>\(type)<oc:permissions>RGDNVW</oc:permissions></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
        }
        var xml = #"<?xml version="1.0"?><d:multistatus xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">"#
        xml += response(folder, true)
        for (name, isFolder) in tree[folder] ?? [] {
            xml += response((folder == "/" ? "" : folder) + "/" + name, isFolder)
        }
        return xml + "</d:multistatus>"
    }

    @Test func walksWithOneDepthOnePropfindPerFolder() async throws {
        let server = TestHTTPServer { request in
            let prefix = "/remote.php/dav/files/alice"
            var folder = String(request.target.dropFirst(prefix.count))
            if folder.count > 1, folder.hasSuffix("/") { folder.removeLast() }
            guard request.method == "PROPFIND", request.headers[.depth] == "1", Self.tree[folder] != nil else {
                return .respond(404)
            }
            return .respond(207, body: Array(Self.multistatus(folder).utf8))
        }
        let base = try await server.start()
        defer { Task { await server.stop() } }
        var paths: [String] = []
        for try await item in TestClients.client(base).walk("/") {
            paths.append(item.path)
        }
        #expect(paths == ["/A", "/f1", "/A/B", "/A/f2", "/A/B/f3"])
        #expect(server.requests.count == 3)
        #expect(server.requests.allSatisfy { $0.headers[.depth] == "1" })
    }

    @Test func walkEndsWithTheFirstError() async throws {
        let server = TestHTTPServer { _ in .respond(404) }
        let base = try await server.start()
        defer { Task { await server.stop() } }
        await #expect(throws: NextcloudError.self) {
            for try await _ in TestClients.client(base).walk("/nope") {}
        }
    }
}
