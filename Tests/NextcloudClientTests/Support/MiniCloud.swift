import Foundation
import HTTPTypes
import Synchronization

@testable import NextcloudClient

/// Just enough of Nextcloud's chunked upload v2, PROPFIND, OCS and login flow to drive the
/// client over real sockets, with a switch to break one chunk PUT.
final class MiniCloud: Sendable {
    struct State {
        var chunks: [String: [Int: [UInt8]]] = [:]
        var files: [String: [UInt8]] = [:]
        var failChunk: Int? = nil
        var chunkPuts: [Int] = []
        var polls = 0
        var revoked = false
    }

    let state = Mutex(State())
    let user = "alice"
    let password = TestClients.password

    func makeServer() -> TestHTTPServer {
        TestHTTPServer { [self] request in self.handle(request) }
    }

    func handle(_ request: TestHTTPServer.Request) -> TestHTTPServer.Reply {
        let path = request.target.split(separator: "?").first.map(String.init) ?? request.target
        // Public endpoints.
        if path == "/index.php/login/v2" {
            let body =
                #"{"poll":{"token":"poll-secret-token","endpoint":"ENDPOINT/index.php/login/v2/poll"},"login":"ENDPOINT/index.php/login/v2/flow/abc"}"#
            // An HTTP/1.1 request's Host header (HTTPField.Name.host is reserved for HTTP/2's :authority).
            let host = "http://" + (request.headers[hostField] ?? "")
            return .respond(
                200, headers: [("Content-Type", "application/json")],
                body: Array(body.replacingOccurrences(of: "ENDPOINT", with: host).utf8))
        }
        if path == "/index.php/login/v2/poll" {
            let n = state.withLock {
                $0.polls += 1; return $0.polls
            }
            guard String(decoding: request.body, as: UTF8.self) == "token=poll-secret-token", n >= 2 else {
                return .respond(404, body: Array("[]".utf8))
            }
            let body = #"{"server":"http://127.0.0.1","loginName":"alice","appPassword":"\#(password)"}"#
            return .respond(200, headers: [("Content-Type", "application/json")], body: Array(body.utf8))
        }
        // Everything else needs credentials; the message echoes the password to test redaction.
        guard let auth = request.basicAuth, auth.user == user, auth.password == password,
            !state.withLock({ $0.revoked })
        else {
            let echoed = request.basicAuth?.password ?? ""
            return .closeDelimited(401, body: Array(sabreError("NotAuthenticated", "bad password \(echoed)")))
        }
        if path.hasPrefix("/ocs/") {
            guard request.headers[.ocsAPIRequest] == "true" else { return .respond(412) }
            return ocs(request, path: path)
        }
        let uploads = "/remote.php/dav/uploads/alice/"
        if path.hasPrefix(uploads) {
            return upload(request, rest: String(path.dropFirst(uploads.count)))
        }
        return .respond(404, body: Array(sabreError("NotFound", "File not found").utf8Bytes))
    }

    private func ocs(_ request: TestHTTPServer.Request, path: String) -> TestHTTPServer.Reply {
        let ok = #"{"ocs":{"meta":{"status":"ok","statuscode":200,"message":"OK"},"data":DATA}}"#
        switch (request.method, path) {
        case ("GET", "/ocs/v2.php/cloud/user"):
            let data =
                #"{"id":"alice","displayname":"Alice Example","quota":{"free":100,"used":5,"total":105,"relative":4.76,"quota":105}}"#
            return .respond(200, body: Array(ok.replacingOccurrences(of: "DATA", with: data).utf8))
        case ("DELETE", "/ocs/v2.php/core/apppassword"):
            state.withLock { $0.revoked = true }
            return .respond(200, body: Array(ok.replacingOccurrences(of: "DATA", with: "[]").utf8))
        default:
            return .respond(
                404,
                body: Array(#"{"ocs":{"meta":{"status":"failure","statuscode":404,"message":"nope"},"data":[]}}"#.utf8))
        }
    }

    private func upload(_ request: TestHTTPServer.Request, rest: String) -> TestHTTPServer.Reply {
        let parts = rest.split(separator: "/").map(String.init)
        guard let id = parts.first else { return .respond(400) }
        switch (request.method, parts.count) {
        case ("MKCOL", 1):
            guard request.headers[.destination] != nil else { return .respond(400) }
            state.withLock { $0.chunks[id] = [:] }
            return .respond(201)
        case ("PROPFIND", 1):
            guard let chunks = state.withLock({ $0.chunks[id] }) else {
                return .closeDelimited(404, body: Array(sabreError("NotFound", "no upload").utf8Bytes))
            }
            var xml =
                #"<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"><d:response><d:href>/remote.php/dav/uploads/alice/\#(id)/</d:href><d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"#
            for (n, bytes) in chunks.sorted(by: { $0.key < $1.key }) {
                xml +=
                    #"<d:response><d:href>/remote.php/dav/uploads/alice/\#(id)/\#(n)</d:href><d:propstat><d:prop><d:getcontentlength>\#(bytes.count)</d:getcontentlength><d:resourcetype/></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"#
            }
            xml += "</d:multistatus>"
            return .respond(207, body: Array(xml.utf8))
        case ("PUT", 2):
            guard let n = Int(parts[1]), request.headers[.ocTotalLength] != nil,
                request.headers[.destination] != nil
            else { return .respond(400) }
            let fail = state.withLock { state -> Bool in
                state.chunkPuts.append(n)
                if state.failChunk == n {
                    state.failChunk = nil
                    return true
                }
                guard state.chunks[id] != nil else { return false }
                state.chunks[id]?[n] = request.body
                return false
            }
            return fail ? .drop : .respond(201)
        case ("MOVE", 2) where parts[1] == ".file":
            guard let destination = request.headers[.destination], let total = request.headers[.ocTotalLength],
                let chunks = state.withLock({ $0.chunks[id] })
            else { return .respond(400) }
            let assembled = chunks.sorted { $0.key < $1.key }.flatMap(\.value)
            guard String(assembled.count) == total else { return .respond(400) }
            state.withLock {
                $0.files[destination] = assembled
                $0.chunks[id] = nil
            }
            return .respond(
                201, headers: [("OC-FileId", "00000042ocabc"), ("OC-ETag", "\"new\""), ("X-OC-MTime", "accepted")])
        default:
            return .respond(405)
        }
    }
}

extension Data {
    var utf8Bytes: [UInt8] { Array(self) }
}

/// `Host`, as HTTP/1.1 sends it.
private let hostField = HTTPField.Name("Host")!
