import Foundation
import Testing

@testable import DevCloud

/// Sends every recorded request (in the recorded order, from the recorded starting state) to DevCloud over a real
/// loopback socket and compares status, the headers that matter and the body's shape with Nextcloud's answer.
@Suite("Replay of the recorded Nextcloud exchanges")
struct ReplayTests {
    /// Fixtures DevCloud does not replay, and why (also listed in docs/devcloud.md).
    static let notReplayed: [String: String] = [
        "096": "Nextcloud's browser login pages; DevCloud has its own simple form and a non-interactive grant",
        "097": "Nextcloud's browser login pages", "098": "Nextcloud's browser login pages",
        "099": "Nextcloud's browser login pages", "100": "Nextcloud's browser login pages",
        "101": "Nextcloud's browser login pages",
    ]

    /// Header values that must be equal; presence must agree for these and for `presenceHeaders`.
    static let exactHeaders = ["Content-Range", "WWW-Authenticate", "X-OC-MTime", "OC-Checksum", "Allow"]
    static let presenceHeaders = ["ETag", "OC-ETag", "OC-FileId", "Lock-Token", "Content-Disposition"]

    final class Replay {
        let server: TestServer
        var substitutions: [(String, String)] = []
        var appPasswords: [String: String] = [:]
        var uploadedBytes: [String: Int] = [:]
        var notesID: Int64 = 0

        init(server: TestServer) { self.server = server }

        func substitute(_ text: String) -> String {
            substitutions.reduce(text) { $0.replacingOccurrences(of: $1.0, with: $1.1) }
        }

        func authorization(_ value: String) -> String {
            guard let open = value.firstIndex(of: "<"), let close = value.lastIndex(of: ">") else { return value }
            let inner = value[value.index(after: open)..<close]
            if value.hasPrefix("Bearer") { return "Bearer " + (appPasswords["alice"] ?? "") }
            let parts = inner.split(separator: ":").map(String.init)
            let secret: String
            switch parts[1] {
            case "password": secret = TestServer.passwords[parts[0]]!
            case "app-password": secret = appPasswords[parts[0]] ?? "none"
            default: secret = "wrong-password-\(parts[1])"
            }
            return "Basic " + Data("\(parts[0]):\(secret)".utf8).base64EncodedString()
        }

        func body(for fixture: Fixture) throws -> [UInt8] {
            guard let binary = Fixture.binary(fixture.requestBody) else {
                // The recording adds one LF after a body that lacks it; Content-Length tells which.
                var text = substitute(fixture.requestBody)
                if let length = fixture.requestHeader("Content-Length").flatMap(Int.init), text.utf8.count == length - 1
                {
                    text += "\n"
                }
                return Array(text.utf8)
            }
            let target = fixture.target
            if target.contains("/uploads/"), let destination = fixture.requestHeader("Destination") {
                let name = String(destination.split(separator: "/").last ?? "")
                let upload = String(target.split(separator: "/").dropLast().joined(separator: "/"))
                let offset = uploadedBytes[upload, default: 0]
                uploadedBytes[upload] = offset + binary.count
                return Array(try TestData.keystream(name: name, count: offset + binary.count)[offset...])
            }
            return try TestData.keystream(name: String(target.split(separator: "/").last ?? ""), count: binary.count)
        }

        func send(_ fixture: Fixture) async throws -> HTTPResult {
            var headers: [(String, String)] = []
            for (name, value) in fixture.requestHeaders {
                if name == "Authorization" {
                    headers.append((name, authorization(value)))
                } else {
                    headers.append((name, substitute(value)))
                }
            }
            return try await RawHTTP.send(
                port: server.port, method: fixture.method, path: substitute(fixture.target), headers: headers,
                body: try body(for: fixture))
        }

        func put(_ path: String, _ text: String, mtime: Int? = nil) async throws {
            let result = try await server.request(
                "PUT", "/remote.php/dav/files/alice/\(path)", as: "alice",
                headers: mtime.map { [("X-OC-Mtime", String($0))] } ?? [], body: Array(text.utf8))
            precondition([201, 204].contains(result.status), "setup PUT \(path) failed")
        }

        func mkcol(_ path: String) async throws {
            let result = try await server.request("MKCOL", "/remote.php/dav/files/alice/\(path)", as: "alice")
            precondition(result.status == 201, "setup MKCOL \(path) failed")
        }

        /// What happened on the recording server between fixtures without being recorded.
        func before(_ number: String) async throws {
            switch number {
            case "044": try await put("Footage/sub/a.txt", "a file to move\n")
            case "057":
                try await mkcol("LockTest")
                try await put("LockTest/doc.txt", "a document to lock\n\n")
                try server.server.addShare(.init(owner: "alice", path: "/LockTest", sharee: "bob", permissions: 31))
            case "073":
                let used = server.server.usedBytes(user: "alice")
                try server.server.addUser(
                    .init(
                        name: "alice", password: TestServer.passwords["alice"]!, quotaBytes: used + 1_048_576,
                        displayName: "Alice Example"))
            case "077":
                try server.server.addUser(
                    .init(name: "alice", password: TestServer.passwords["alice"]!, displayName: "Alice Example"))
            case "089": try await mkcol("ShareDemo")
            case "102": #expect(server.server.grantLoginFlow(user: "alice"))
            case "110":
                try await put("Footage/notes.txt", "harp notes, version 1\n", mtime: 1_700_000_500)
                let item = try server.server.item(
                    try server.server.resolve(viewer: "alice", viewPath: "Footage/notes.txt"))
                notesID = item?.fileid ?? 0
                substitutions.append(("/versions/111", "/versions/\(notesID)"))
            case "125":
                server.server.resetBruteForce()
                for _ in 0..<10 {
                    let result = try await server.request(
                        "PROPFIND", "/remote.php/dav/files/alice/Footage", as: "alice", password: "wrong",
                        headers: [("Depth", "0")])
                    #expect(result.status == 401)
                }
            case "113":
                let result = try await server.request(
                    "DELETE", "/remote.php/dav/files/alice/Footage/wrong-sum.txt", as: "alice")
                precondition(result.status == 204, "setup DELETE failed")
            case "131": server.server.resetBruteForce()
            default: break
            }
        }

        func after(_ number: String, fixture: Fixture, result: HTTPResult) {
            for name in ["ETag", "OC-FileId"] {
                if let recorded = fixture.responseHeader(name), let ours = result.header(name), recorded != ours {
                    substitutions.append((recorded, ours))
                }
            }
            switch number {
            case "066":
                if let recorded = fixture.responseHeader("Lock-Token"), let ours = result.header("Lock-Token") {
                    substitutions.append((String(recorded.dropFirst().dropLast()), String(ours.dropFirst().dropLast())))
                }
            case "089":
                if let id = Shape.shareID(result.text) { substitutions.append(("shares/3", "shares/\(id)")) }
            case "094":
                if case .object(let pairs)? = OCSValue.parse(json: result.text),
                    case .object(let poll)? = pairs.first(where: { $0.0 == "poll" })?.1,
                    case .string(let token)? = poll.first(where: { $0.0 == "token" })?.1
                {
                    substitutions.append(("<poll-token>", token))
                }
            case "102":
                if case .string(let password)? = OCSValue.parse(json: result.text)?["appPassword"] {
                    appPasswords["alice"] = password
                }
            case "106":
                if case .string(let password)? = OCSValue.parse(json: result.text)?["ocs"]?["data"]?["apppassword"] {
                    appPasswords["bob"] = password
                }
            default: break
            }
        }

        func hrefBack(_ href: String) -> String {
            notesID == 0 ? href : href.replacingOccurrences(of: "/versions/\(notesID)", with: "/versions/111")
        }
    }

    /// Differences between a recorded answer and DevCloud's.
    static func differences(_ fixture: Fixture, _ result: HTTPResult, replay: Replay) -> [String] {
        var problems: [String] = []
        if fixture.status != result.status { problems.append("status \(result.status), recorded \(fixture.status)") }
        for name in exactHeaders + presenceHeaders {
            let recorded = fixture.responseHeader(name)
            let ours = result.header(name)
            if (recorded == nil) != (ours == nil) {
                problems.append("header \(name): ours \(ours ?? "absent"), recorded \(recorded ?? "absent")")
            } else if let recorded, let ours, exactHeaders.contains(name), recorded != ours {
                problems.append("header \(name): ours \(ours), recorded \(recorded)")
            } else if let recorded, let ours, name.hasSuffix("ETag"), recorded.hasPrefix("\"") != ours.hasPrefix("\"") {
                problems.append("header \(name) quoting: ours \(ours), recorded \(recorded)")
            }
        }
        if fixture.file.hasPrefix("002"), result.header("DAV") != fixture.responseHeader("DAV") {
            problems.append("DAV header differs")
        }
        if let recorded = fixture.responseHeader("Content-Type") {
            func normal(_ value: String?) -> String {
                (value ?? "absent").lowercased().replacingOccurrences(of: " ", with: "")
            }
            if normal(recorded) != normal(result.header("Content-Type")) {
                problems.append("Content-Type: ours \(result.header("Content-Type") ?? "absent"), recorded \(recorded)")
            }
        }
        let body = fixture.responseBody
        if fixture.method == "HEAD" || body.isEmpty {
            if !result.body.isEmpty { problems.append("body: ours has \(result.body.count) bytes, recorded none") }
        } else if let binary = Fixture.binary(body) {
            if binary.count != result.body.count {
                problems.append("body length \(result.body.count), recorded \(binary.count)")
            }
            if let hex = binary.hex, hex != result.body.map({ String(format: "%02x", $0) }).joined() {
                problems.append("body bytes differ")
            }
            if let sha1 = binary.sha1, sha1 != TestData.sha1Hex(result.body) { problems.append("body sha1 differs") }
        } else if body.hasPrefix("<?xml") {
            let recorded = Shape.xml(body)
            let ours = Shape.xml(result.text, hrefs: replay.hrefBack)
            if recorded == nil { problems.append("recorded XML does not parse") }
            if recorded != ours {
                problems.append("XML shape differs:\n  ours     \(ours ?? result.text)\n  recorded \(recorded ?? "")")
            }
        } else if body.hasPrefix("{") || body.hasPrefix("[") {
            let recorded = Shape.json(body)
            let ours = Shape.json(result.text)
            if recorded == nil { problems.append("recorded JSON does not parse") }
            if recorded != ours {
                problems.append("JSON shape differs:\n  ours     \(ours ?? result.text)\n  recorded \(recorded ?? "")")
            }
        } else if body != result.text.trimmingCharacters(in: .newlines) && body + "\n" != result.text {
            problems.append("body differs: ours \(result.text.prefix(200))")
        }
        return problems
    }

    @Test("every recorded exchange, in order")
    func replayAll() async throws {
        let server = try await TestServer(
            shares: [.init(owner: "alice", path: "/Footage", sharee: "bob", permissions: 1)],
            folders: ["alice": ["Footage"]])
        _ = try await server.seedFootage()
        let replay = Replay(server: server)
        var replayed = 0
        for fixture in try Fixture.all() {
            let number = String(fixture.file.prefix(3))
            if Self.notReplayed[number] != nil { continue }
            try await replay.before(number)
            let result = try await replay.send(fixture)
            let problems = Self.differences(fixture, result, replay: replay)
            #expect(problems.isEmpty, "\(fixture.file):\n\(problems.joined(separator: "\n"))")
            replay.after(number, fixture: fixture, result: result)
            replayed += 1
        }
        #expect(replayed == 125)
        await server.stop()
    }

    @Test("every fixture is either replayed or listed with a reason")
    func coverage() throws {
        let all = try Fixture.all()
        #expect(all.count == 131)
        for number in Self.notReplayed.keys {
            #expect(all.contains { $0.file.hasPrefix(number) })
        }
    }

    @Test("the shape comparison notices a difference")
    func shapeDetectsDifferences() throws {
        let fixture = try Fixture.load("005-propfind-d0-footage-bob.http")
        let changed = fixture.responseBody.replacingOccurrences(of: "SGDN<", with: "SGDNV<")
        #expect(Shape.xml(changed) != Shape.xml(fixture.responseBody))
        let prefixed = fixture.responseBody.replacingOccurrences(of: "d:", with: "D:").replacingOccurrences(
            of: "xmlns:d=", with: "xmlns:D=")
        #expect(Shape.xml(prefixed) == Shape.xml(fixture.responseBody), "prefixes do not matter, namespaces do")
    }
}

extension Shape {
    static func shareID(_ json: String) -> String? {
        if case .string(let id)? = OCSValue.parse(json: json)?["ocs"]?["data"]?["id"] { return id }
        return nil
    }
}
