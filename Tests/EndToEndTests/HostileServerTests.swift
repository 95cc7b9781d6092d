import Foundation
import Testing

/// `get -R` against a WebDAV server that lies in its listings (docs/threat-model.md, "The Nextcloud server"): nothing
/// may be written outside `-o`, the good files still arrive, and every refused entry is an error event.
@Suite("Hostile WebDAV server (real processes)", .serialized)
struct HostileServerTests {
    @Test func getRecursiveNeverWritesOutsideTheOutputFolder() async throws {
        let bed = try HostileBed()
        defer { bed.shutdown() }
        // Left in the output folder by someone else: a link to a folder outside it where a remote folder will go,
        // and a link to a file outside it where a remote file will go.
        let out = bed.work + "/out"
        try FileManager.default.createDirectory(atPath: bed.directory + "/outside", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        #expect(symlink(bed.directory + "/outside", out + "/linked") == 0)
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: bed.directory + "/victim.txt"))
        #expect(symlink(bed.directory + "/victim.txt", out + "/good.txt") == 0)

        let get = try bed.harp(["get", "-R", "/Team", "-o", "out", "--json", "--linger", "0"])
        let status = await get.wait(timeout: 120)

        // Some files failed, others arrived: exit 5 (docs/cli.md).
        #expect(status == 5, "\(get.stderr.suffix(2000))")
        // The good files, with their names as the server has them.
        for (remote, content) in HostileBed.goodFiles {
            let local = out + "/" + remote.dropFirst("/Team/".count)
            #expect(FileManager.default.contents(atPath: local) == content, "\(local)\n\(get.output)")
        }
        var isLink = false
        if let type = try? FileManager.default.attributesOfItem(atPath: out + "/good.txt")[.type] as? FileAttributeType
        {
            isLink = type == .typeSymbolicLink
        }
        #expect(!isLink, "the link at out/good.txt was replaced by the file, not written through")
        #expect(FileManager.default.contents(atPath: bed.directory + "/victim.txt") == Data("keep me".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: bed.directory + "/outside").isEmpty)

        // Nothing anywhere in the test folder outside `out/` except what was there before and the tools' own files.
        let written = try filesBelow(bed.directory).filter { path in
            !path.hasPrefix(out + "/") && !path.hasPrefix(bed.directory + "/home/")
                && ![bed.directory + "/server.py", bed.directory + "/victim.txt", bed.work + "/harp.stderr"].contains(
                    path)
        }
        #expect(written.isEmpty, "written outside out/: \(written)")
        // Inside `out/`: exactly the good files (and the link left there).
        let inside = Set(try filesBelow(out).map { String($0.dropFirst(out.count + 1)) })
        let expected = Set(HostileBed.goodFiles.map { String($0.0.dropFirst("/Team/".count)) } + ["linked"])
        #expect(inside == expected, "\(inside.sorted())")

        // Each refused entry is an error event naming it.
        let errors = get.jsonLines.filter { $0["event"] as? String == "error" }
        let messages = errors.map { "\($0["path"] ?? "") \($0["message"] ?? "")" }.joined(separator: "\n")
        for marker in HostileBed.hostileMarkers {
            #expect(messages.contains(marker), "no error event names \(marker):\n\(messages)")
        }
        #expect(errors.allSatisfy { ($0["code"] as? Int) == 1 }, "\(errors)")
        #expect(messages.contains("symbolic link"), "\(messages)")
    }

    /// `get -R /` has no folder name to use locally: without `-o` it is a usage error, and nothing is written (before,
    /// the files went to `/RELATIVE-PATH`, at the root of the local file system).
    @Test func getRecursiveOfTheRootNeedsAnOutputFolder() async throws {
        let bed = try HostileBed()
        defer { bed.shutdown() }
        let get = try bed.harp(["get", "-R", "/", "--json", "--linger", "0"])
        #expect(await get.wait(timeout: 120) == 2, "\(get.stderr)")
        #expect(get.stderr.contains("-o"), "\(get.stderr)")
        #expect(try filesBelow(bed.work) == [bed.work + "/harp.stderr"])
    }

    /// Every regular file and link below `root` (links are not followed).
    private func filesBelow(_ root: String) throws -> [String] {
        var found: [String] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: root) {
            let path = root + "/" + name
            let type = try FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType
            if type == .typeDirectory {
                found += try filesBelow(path)
            } else {
                found.append(path)
            }
        }
        return found
    }
}

/// A hostile WebDAV server (a small Python script on 127.0.0.1, port 0) and a folder to run `harp-cli` in.
final class HostileBed: @unchecked Sendable {
    // @unchecked: every stored property is a constant set in `init`; `Process` is only signalled from `shutdown`.
    let directory: String
    let work: String
    let server: Process
    let baseURL: String

    /// Files the listing names honestly (remote path, content): a space, `#`, `%` and non-ASCII names included.
    static let goodFiles: [(String, Data)] = [
        ("/Team/good.txt", Data("good file\n".utf8)),
        ("/Team/a b #1 100%.txt", Data("spaces, hash and percent\n".utf8)),
        ("/Team/résumé ✓.txt", Data("unicode\n".utf8)),
        ("/Team/sub/deep.txt", Data("one folder down\n".utf8)),
    ]

    /// Text each refused entry's error event must contain (from the href or the decoded path).
    static let hostileMarkers = [
        "escaped1", "escaped2", "escaped3", "escaped4", "escaped5", "escaped6", "escaped7", "nested.txt",
        "back%5Cslash", "xxxxxxxxxx", "inside.txt",
    ]

    init() throws {
        directory =
            FileManager.default.temporaryDirectory.appendingPathComponent("harp-hostile-\(UUID().uuidString)")
            .path
        work = directory + "/work"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let script = directory + "/server.py"
        try Data(Self.script.utf8).write(to: URL(fileURLWithPath: script))
        server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", script, directory]
        let out = Pipe()
        server.standardOutput = out
        server.standardError = FileHandle.nullDevice
        try server.run()
        // The script prints its base URL as its first line, once it listens.
        var line = Data()
        while let byte = try out.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) {
            line.append(byte)
        }
        baseURL = String(decoding: line, as: UTF8.self)
        guard baseURL.hasPrefix("http://127.0.0.1:") else {
            server.terminate()
            throw TestbedError("the hostile server did not start (python3 missing?)")
        }
    }

    /// Runs `harp-cli` in `work/` against the hostile server, with its own configuration and store.
    func harp(_ arguments: [String]) throws -> LaunchedProcess {
        var environment = Testbed.baseEnvironment
        let home = directory + "/home"
        environment["HARP_CONFIG_DIR"] = home + "/config"
        environment["HARP_STORE"] = home + "/store.sqlite"
        environment["XDG_STATE_HOME"] = home + "/state"
        environment["HARP_SERVER"] = baseURL
        environment["HARP_USER"] = "alice"
        environment["HARP_APP_PASSWORD"] = "alice-pw"
        return try LaunchedProcess(name: "harp", arguments: arguments, environment: environment, directory: work)
    }

    func shutdown() {
        if server.isRunning { server.terminate() }
        guard ProcessInfo.processInfo.environment["TESTBED_KEEP"] == nil else { return }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The server (run as `python3 server.py TEST-FOLDER`): honest answers for `/Team`, `/Team/sub` and `/Team/linked`, plus hostile entries in `/Team`'s
    /// listing; any GET is answered with the content of the good file of that name (or of a hostile one), with
    /// ranges, so that a client that accepted a hostile entry would write it.
    static let script = #"""
        import http.server, sys, urllib.parse

        ROOT = "/remote.php/dav/files/alice"
        BED = sys.argv[1]  # the test's folder: where an escaping absolute path is aimed
        GOOD = {
            "/Team/good.txt": b"good file\n",
            "/Team/a b #1 100%.txt": b"spaces, hash and percent\n",
            "/Team/r\u00e9sum\u00e9 \u2713.txt": b"unicode\n",
            "/Team/sub/deep.txt": b"one folder down\n",
            "/Team/linked/inside.txt": b"under a link\n",
        }
        FOLDERS = {"/": ["Team/"], "/Team": ["good.txt", "a b #1 100%.txt", "r\u00e9sum\u00e9 \u2713.txt", "sub/", "linked/"],
                   "/Team/sub": ["deep.txt"], "/Team/linked": ["inside.txt"]}
        EVIL = b"written by a hostile listing\n"
        HOSTILE = [
            ROOT + "/Team/%2e%2e/%2e%2e/escaped1.txt",
            ROOT + "/Team/../escaped2.txt",
            ROOT + "/Team/..%2fescaped3.txt",
            ROOT + "/Team/%2Ftmp%2Fescaped4.txt",
            BED + "/escaped5.txt",
            ROOT + "/Team/" + "%2E%2E/" * 40 + urllib.parse.quote(BED.lstrip("/")) + "/escaped6.txt",
            ROOT + "/Team/escaped7%00.txt",
            ROOT + "/Team/sub/nested.txt",
            ROOT + "/Team/back%5Cslash.txt",
            ROOT + "/Team/" + "x" * 300 + ".txt",
            ROOT + "/Team/",
            ROOT + "/Team/good.txt",
        ]

        def response(href, is_folder, size):
            if is_folder:
                props = "<d:resourcetype><d:collection/></d:resourcetype>"
            else:
                props = "<d:resourcetype/><d:getcontentlength>%d</d:getcontentlength>" % size
            return ("<d:response><d:href>%s</d:href><d:propstat><d:prop>%s<d:getetag>&quot;e1&quot;</d:getetag>"
                    "<oc:fileid>%d</oc:fileid><oc:permissions>RGDNVW</oc:permissions>"
                    "<d:getlastmodified>Tue, 14 Nov 2023 22:13:20 GMT</d:getlastmodified></d:prop>"
                    "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
                    % (href.replace("&", "&amp;").replace("<", "&lt;"), props, abs(hash(href)) % 100000 + 1))

        def encoded(path, folder=False):
            if path == "/":
                return ROOT + "/"
            return ROOT + urllib.parse.quote(path) + ("/" if folder else "")

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def relative(self):
                path = urllib.parse.urlsplit(self.path).path
                if not path.startswith(ROOT):
                    return None
                rest = urllib.parse.unquote(path[len(ROOT):]).rstrip("/")
                return rest or "/"

            def send(self, status, body, headers=()):
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PROPFIND(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                path = self.relative()
                depth = self.headers.get("Depth", "1")
                parts = []
                if path in FOLDERS:
                    parts.append(response(encoded(path, True), True, 0))
                    if depth == "1":
                        for name in FOLDERS[path]:
                            child = path.rstrip("/") + "/" + name.rstrip("/")
                            is_folder = name.endswith("/")
                            parts.append(response(encoded(child, is_folder), is_folder, len(GOOD.get(child, b""))))
                        if path == "/Team":
                            parts += [response(href, href.endswith("/"), len(EVIL)) for href in HOSTILE]
                elif path is not None and depth == "0":
                    parts.append(response(urllib.parse.urlsplit(self.path).path, False, len(self.content(path))))
                else:
                    self.send(404, b"")
                    return
                body = ('<?xml version="1.0"?><d:multistatus xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
                        + "".join(parts) + "</d:multistatus>").encode()
                self.send(207, body, [("Content-Type", "application/xml; charset=utf-8")])

            def content(self, path):
                return GOOD.get(path, EVIL)

            def do_GET(self):
                path = self.relative()
                if path is None:
                    self.send(404, b"")
                    return
                data = self.content(path)
                ranges = self.headers.get("Range")
                if ranges and ranges.startswith("bytes="):
                    first, _, last = ranges[6:].partition("-")
                    first = int(first)
                    last = min(int(last) if last else len(data) - 1, len(data) - 1)
                    self.send(206, data[first:last + 1], [("Content-Range", "bytes %d-%d/%d" % (first, last, len(data))),
                                                          ("ETag", '"e1"')])
                else:
                    self.send(200, data, [("ETag", '"e1"')])

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        print("http://127.0.0.1:%d" % server.server_address[1], flush=True)
        server.serve_forever()
        """#
}
