import Foundation
import Testing

@testable import NextcloudClient

/// What a hostile server can put in a listing, and what harp makes of it (docs/threat-model.md, "The Nextcloud
/// server"): no name may be `.`, `..` or empty, or hold `/`, `\` or a control character, after percent-decoding;
/// every child lies directly in the folder listed; walks end.
@Suite("Hostile listings")
struct HostileListingTests {
    static let root = "/remote.php/dav/files/alice"

    static let refused: [(String, HrefRefusal)] = [
        (root + "/Team/%2e%2e/%2e%2e/etc/passwd", .dotSegment),
        (root + "/Team/%2E%2E", .dotSegment),
        (root + "/Team/../x", .dotSegment),
        (root + "/Team/./x", .dotSegment),
        (root + "/Team/%2e/x", .dotSegment),
        (root + "/Team/..%2fx", .forbiddenCharacter(UInt8(ascii: "/"))),
        (root + "/Team/a%2Fb", .forbiddenCharacter(UInt8(ascii: "/"))),
        (root + "/Team/a%5Cb", .forbiddenCharacter(UInt8(ascii: "\\"))),
        (root + "/Team/a\\b", .forbiddenCharacter(UInt8(ascii: "\\"))),
        (root + "/Team/a%00b", .forbiddenCharacter(0)),
        (root + "/Team/a%0Ab", .forbiddenCharacter(0x0A)),
        (root + "/Team/a%1Bb", .forbiddenCharacter(0x1B)),
        (root + "/Team//x", .emptySegment),
        (root + "/Team/" + String(repeating: "n", count: 256), .nameTooLong(256)),
        ("/etc/passwd", .outsideRoot),
        ("/remote.php/dav/files/bob/x", .outsideRoot),
        ("/remote.php/dav/files/alicex/f", .outsideRoot),
        ("/remote.php/dav/files/%2e%2e/alice/x", .outsideRoot),
        ("remote.php/dav/files/alice/x", .notAPath),
        (root + "/Team/%zz", .notAPath),
        (root + "/Team/%2", .notAPath),
        (root + "/Team/%ff%fe", .notAPath),
        ("http://127.0.0.1/remote.php/dav/files/alice/Team/%2e%2e/%2e%2e/x", .dotSegment),
    ]

    @Test("refused hrefs", arguments: refused)
    func refusedHref(href: String, reason: HrefRefusal) {
        #expect(HrefPath.segments(href: href, rootHref: Self.root) == .failure(reason))
    }

    /// The parser that every PROPFIND goes through drops what the href checks refuse (before the fix it decoded the
    /// whole href and kept `/Team/../../etc/passwd`).
    @Test func theParserLeavesRefusedHrefsOut() throws {
        for (href, _) in Self.refused {
            #expect(Multistatus.relativePath(href: href, rootHref: Self.root) == nil, "\(href)")
        }
        let xml =
            #"<?xml version="1.0"?><d:multistatus xmlns:d="DAV:">"#
            + Self.refused.map { "<d:response><d:href>\($0.0)</d:href></d:response>" }.joined()
            + "<d:response><d:href>\(Self.root)/ok.txt</d:href></d:response></d:multistatus>"
        let items = try Multistatus.parse(Data(xml.utf8), rootHref: Self.root, path: nil)
        #expect(items.map(\.path) == ["/ok.txt"])
    }

    @Test func legitimateNamesStillWork() {
        let cases: [(String, [String])] = [
            (Self.root + "/", []),
            (Self.root, []),
            (Self.root + "/A%20B/c%2Bd", ["A B", "c+d"]),
            (Self.root + "/a%20b%20%231%20100%25.txt", ["a b #1 100%.txt"]),
            (Self.root + "/r%C3%A9sum%C3%A9%20%E2%9C%93/", ["résumé ✓"]),
            (Self.root + "/.harp/..x/x..", [".harp", "..x", "x.."]),
            (Self.root + "/" + String(repeating: "n", count: 255), [String(repeating: "n", count: 255)]),
            ("https://h/remote.php/dav/files/alice/f", ["f"]),
        ]
        for (href, names) in cases {
            #expect(HrefPath.segments(href: href, rootHref: Self.root) == .success(names), "\(href)")
        }
        // A server under a base path.
        #expect(
            HrefPath.segments(href: "/nc/remote.php/dav/files/alice/f", rootHref: "/nc" + Self.root)
                == .success(["f"]))
    }

    @Test func noResponseOfARealServerIsRefused() throws {
        for fixture in MultistatusFixtureTests.multistatusFixtures {
            let entries = try Multistatus.parseEntries(
                fixture.body, rootHref: MultistatusFixtureTests.rootHref(for: fixture), path: nil)
            #expect(!entries.isEmpty)
            for case .refused(let href, let reason) in entries {
                Issue.record("\(fixture.name): \(href) refused: \(reason)")
            }
        }
    }

    @Test func printableNamesHaveNoControlCharacters() {
        let shown = HrefPath.printable("/a\u{1B}[2J\nb" + String(repeating: "x", count: 500))
        #expect(!shown.unicodeScalars.contains { $0.value < 0x20 })
        #expect(shown.hasPrefix("/a\\u{1b}[2J\\u{a}b"))
        #expect(shown.count < 240)
    }

    // MARK: Walks

    /// A server whose listings come from `listing(folder)`: (href suffix below the user's root, is folder) pairs,
    /// the folder itself first.
    static func server(_ listing: @escaping @Sendable (String) -> [(String, Bool)]?) -> TestHTTPServer {
        TestHTTPServer { request in
            var folder = String(request.target.dropFirst(Self.root.count)).removingPercentEncoding ?? ""
            if folder.count > 1, folder.hasSuffix("/") { folder.removeLast() }
            guard request.method == "PROPFIND", let entries = listing(folder.isEmpty ? "/" : folder) else {
                return .respond(404)
            }
            var xml = #"<?xml version="1.0"?><d:multistatus xmlns:d="DAV:">"#
            for (href, isFolder) in entries {
                let type = isFolder ? "<d:resourcetype><d:collection/></d:resourcetype>" : "<d:resourcetype/>"
                xml += "<d:response><d:href>\(Self.root + href)</d:href><d:propstat><d:prop>\(type)</d:prop>"
                xml += "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
            }
            return .respond(207, body: Array((xml + "</d:multistatus>").utf8))
        }
    }

    static func collect(
        _ client: NextcloudClient, _ path: String, limits: WalkLimits = WalkLimits()
    ) async throws
        -> (items: [String], refused: [RefusedEntry])
    {
        var items: [String] = []
        var refused: [RefusedEntry] = []
        for try await entry in client.walkEntries(path, limits: limits) {
            switch entry {
            case .item(let item): items.append(item.path)
            case .refused(let entry): refused.append(entry)
            }
        }
        return (items, refused)
    }

    @Test func aListingThatLiesIsSortedIntoItemsAndRefusals() async throws {
        let server = Self.server { folder in
            switch folder {
            case "/Team":
                [
                    ("/Team/", true), ("/Team/a.txt", false), ("/Team/sub/", true),
                    ("/Team/", true),  // the folder again: would list itself forever if taken for a child
                    ("/Team/a.txt", false),  // a second copy
                    ("/Team/%2e%2e/%2e%2e/escaped.txt", false), ("/Team/..%2fescaped.txt", false),
                    ("/Team/sub/grandchild.txt", false),  // not a direct child
                    ("/Other/x.txt", false),  // outside the folder
                ]
            case "/Team/sub": [("/Team/sub", true), ("/Team/sub/b.txt", false)]
            default: nil
            }
        }
        let base = try await server.start()
        defer { Task { await server.stop() } }
        let client = TestClients.client(base)
        let (items, refused) = try await Self.collect(client, "/Team")
        #expect(items == ["/Team/a.txt", "/Team/sub", "/Team/sub/b.txt"])
        #expect(
            refused.map(\.reason) == [
                .duplicate, .duplicate, .dotSegment, .forbiddenCharacter(0x2F), .notInFolder,
                .notInFolder,
            ])
        #expect(refused.contains { $0.name.contains("%2e%2e/%2e%2e/escaped.txt") })
        #expect(refused.allSatisfy { $0.folder == "/Team" })
        #expect("\(refused[2].error)".contains("escaped.txt"))
        #expect(server.requests.count == 2)
        // `walk` (used by `ls -R`) stops at the first refusal with an error naming it.
        await #expect(throws: NextcloudError.self) {
            for try await _ in client.walk("/Team") {}
        }
        // `list` leaves the refused entries out.
        #expect(try await client.list("/Team").children.map(\.path) == ["/Team/a.txt", "/Team/sub"])
    }

    @Test func aTreeWithoutEndStopsAtTheDepthLimit() async throws {
        // Every folder holds one more folder.
        let server = Self.server { folder in
            let base = folder == "/" ? "" : folder
            return [(base + "/", true), (base + "/d/", true)]
        }
        let base = try await server.start()
        defer { Task { await server.stop() } }
        let (items, refused) = try await Self.collect(
            TestClients.client(base), "/", limits: WalkLimits(maximumDepth: 5))
        #expect(items.count == 5)
        #expect(refused.map(\.reason) == [.tooDeep(6)])
        #expect(server.requests.count == 6)
    }

    @Test func aTreeWithoutEndStopsAtTheEntryLimit() async throws {
        // Every folder holds ten more folders.
        let server = Self.server { folder in
            let base = folder == "/" ? "" : folder
            return [(base + "/", true)] + (0..<10).map { (base + "/f\($0)/", true) }
        }
        let base = try await server.start()
        defer { Task { await server.stop() } }
        await #expect(throws: NextcloudError.self) {
            _ = try await Self.collect(TestClients.client(base), "/", limits: WalkLimits(maximumEntries: 200))
        }
        #expect(server.requests.count <= 21)
    }

    /// A listing that declares entities which expand to 10^10 copies (a "billion laughs" document) is an error, not
    /// gigabytes of memory.
    @Test func anEntityBombIsRefused() {
        var dtd = #"<!DOCTYPE d:multistatus [<!ENTITY a0 "lol">"#
        for level in 1...10 {
            dtd += "<!ENTITY a\(level) \"" + String(repeating: "&a\(level - 1);", count: 10) + "\">"
        }
        let xml =
            #"<?xml version="1.0"?>"# + dtd + #"]><d:multistatus xmlns:d="DAV:"><d:response><d:href>"#
            + Self.root + "/&a10;</d:href></d:response></d:multistatus>"
        #expect(throws: NextcloudError.self) {
            _ = try Multistatus.parseEntries(Data(xml.utf8), rootHref: Self.root, path: nil)
        }
    }
}
