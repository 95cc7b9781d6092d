import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The request context: Hummingbird's core storage plus the peer address (for the brute-force throttle).
struct DevCloudContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: String

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }
}

/// Routes every request by path prefix; everything DevCloud answers goes through here.
struct DevCloudResponder: HTTPResponder {
    typealias Context = DevCloudContext
    let server: DevCloudServer

    func respond(to request: Request, context: DevCloudContext) async throws -> Response {
        let path = request.uri.path
        let method = request.method.rawValue
        let isAdmin = path.hasPrefix("/harp-devcloud/")
        let fault = server.state.withLock { state -> Int? in
            state.requests += 1
            if !isAdmin { state.requestsByMethod[method, default: 0] += 1 }
            return isAdmin ? nil : state.takeFault(method: method, path: path)
        }
        if let fault {
            server.logger.debug("devcloud.fault", metadata: ["status": "\(fault)", "path": "\(path)"])
            return HTTP.text(fault, "DevCloud injected fault\n")
        }
        let response = await route(request, context: context, path: path, method: method, isAdmin: isAdmin)
        // Login Flow paths carry tokens: log only their prefix.
        let loggedPath = path.hasPrefix("/index.php/login/v2") ? "/index.php/login/v2..." : path
        server.logger.debug(
            "devcloud.request",
            metadata: ["method": "\(method)", "path": "\(loggedPath)", "status": "\(response.status.code)"])
        return response
    }

    private func route(
        _ request: Request, context: DevCloudContext, path: String, method: String, isAdmin: Bool
    ) async -> Response {
        do {
            if isAdmin { return try await server.handleAdmin(request, context: context) }
            if path == "/status.php" { return server.statusResponse() }
            if path.hasPrefix("/index.php/login/v2") {
                return try await server.handleLoginFlow(request, context: context)
            }
            if path.hasPrefix("/ocs/v1.php/") || path.hasPrefix("/ocs/v2.php/") {
                return try await server.handleOCS(request, context: context)
            }
            if path.hasPrefix("/remote.php/dav") || path.hasPrefix("/remote.php/webdav") {
                return try await server.handleDAV(request, context: context)
            }
            return HTTP.text(404, "Not found\n")
        } catch let error as DAVError {
            return error.response
        } catch {
            server.logger.error(
                "devcloud.request failed", metadata: ["method": "\(method)", "path": "\(path)", "error": "\(error)"])
            return DAVError(500, "Sabre\\DAV\\Exception", "Internal error").response
        }
    }
}

extension DevCloudServer {
    func statusResponse() -> Response {
        HTTP.json(
            200,
            #"{"installed":true,"maintenance":false,"needsDbUpgrade":false,"version":"34.0.1.2","versionstring":"34.0.1","edition":"","productname":"Nextcloud","extendedSupport":false}"#,
            contentType: "application/json")
    }
}

/// Small helpers to build responses.
enum HTTP {
    static func status(_ code: Int) -> HTTPResponse.Status {
        let reasons: [Int: String] = [
            207: "Multi-Status", 412: "Precondition failed", 416: "Requested Range Not Satisfiable", 423: "Locked",
            429: "Too Many Requests", 507: "Insufficient Storage",
        ]
        if let reason = reasons[code] { return .init(code: code, reasonPhrase: reason) }
        return .init(code: code)
    }

    static func response(_ code: Int, headers: HTTPFields = [:], body: String? = nil) -> Response {
        guard let body else {
            return Response(status: status(code), headers: headers, body: ResponseBody())
        }
        return Response(
            status: status(code), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    static func text(_ code: Int, _ body: String) -> Response {
        response(code, headers: [.contentType: "text/plain; charset=utf-8"], body: body)
    }

    static func json(_ code: Int, _ body: String, contentType: String = "application/json; charset=utf-8") -> Response {
        response(code, headers: [.contentType: contentType], body: body)
    }

    static func xml(_ code: Int, _ body: String, headers: HTTPFields = [:]) -> Response {
        var fields: HTTPFields = [.contentType: "application/xml; charset=utf-8"]
        fields.append(contentsOf: headers)
        return response(code, headers: fields, body: body)
    }

    /// The empty answer Nextcloud gives to successful writes (201/204), with its `Content-type` quirk.
    static func empty(_ code: Int, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields.append(HTTPField(name: .emptyContentType, value: "text/html; charset=UTF-8"))
        var response = response(code, headers: fields, body: nil)
        response.headers[.contentLength] = "0"
        return response
    }

    /// Reads a whole (small) request body, refusing more than `limit` bytes.
    static func collect(_ request: Request, limit: Int = 1 << 20) async throws -> String {
        var buffer = ByteBuffer()
        for try await part in request.body {
            guard buffer.readableBytes + part.readableBytes <= limit else {
                throw DAVError(413, "Sabre\\DAV\\Exception", "Request body too large")
            }
            var part = part
            buffer.writeBuffer(&part)
        }
        return buffer.readString(length: buffer.readableBytes) ?? ""
    }

    /// `a=b&c=d` as in URL queries and form bodies; `+` is a space.
    static func form(_ string: String) -> [String: String] {
        var result: [String: String] = [:]
        for pair in string.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map {
                $0.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
            }
            guard let key = parts.first, !key.isEmpty else { continue }
            result[key] = parts.count > 1 ? parts[1] : ""
        }
        return result
    }

    static func query(_ request: Request) -> [String: String] {
        form(request.uri.query ?? "")
    }

    static func httpDate(_ seconds: Int64) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }
}

/// A WebDAV error answered with a Sabre-style XML body, as Nextcloud does.
struct DAVError: Error {
    var status: Int
    var exception: String
    var message: String
    var extraXML: String = ""
    var headers: HTTPFields = [:]

    init(_ status: Int, _ exception: String, _ message: String, extraXML: String = "", headers: HTTPFields = [:]) {
        self.status = status
        self.exception = exception
        self.message = message
        self.extraXML = extraXML
        self.headers = headers
    }

    static func notFound(_ message: String) -> DAVError { .init(404, "Sabre\\DAV\\Exception\\NotFound", message) }
    static func forbidden(_ message: String = "") -> DAVError {
        .init(403, "Sabre\\DAV\\Exception\\Forbidden", message)
    }
    static func conflict(_ message: String) -> DAVError { .init(409, "Sabre\\DAV\\Exception\\Conflict", message) }
    static func badRequest(_ message: String) -> DAVError { .init(400, "Sabre\\DAV\\Exception\\BadRequest", message) }
    static func preconditionFailed(_ message: String, header: String) -> DAVError {
        .init(
            412, "Sabre\\DAV\\Exception\\PreconditionFailed", message,
            extraXML: "  <s:header>\(XML.escape(header))</s:header>\n")
    }
    static func insufficientStorage(_ message: String) -> DAVError {
        .init(507, "Sabre\\DAV\\Exception\\InsufficientStorage", message)
    }

    var response: Response {
        let messageXML = message.isEmpty ? "  <s:message/>\n" : "  <s:message>\(XML.escape(message))</s:message>\n"
        let body =
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:error xmlns:d=\"DAV:\" xmlns:s=\"http://sabredav.org/ns\">\n"
            + "  <s:exception>\(XML.escape(exception))</s:exception>\n" + messageXML + extraXML + "</d:error>\n"
        return HTTP.xml(status, body, headers: headers)
    }
}
