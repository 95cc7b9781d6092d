import Crypto
import Foundation
import HarpBasics
import Hummingbird

/// An OCS answer before it is put into the v1 or v2 envelope.
struct OCSResult {
    var statusCode: Int
    var message: String
    var data: OCSValue

    static func ok(_ data: OCSValue) -> OCSResult { OCSResult(statusCode: 200, message: "OK", data: data) }
    static func failure(_ code: Int, _ message: String) -> OCSResult {
        OCSResult(statusCode: code, message: message, data: .array([]))
    }
}

extension DevCloudServer {
    func handleOCS(_ request: Request, context: DevCloudContext) async throws -> Response {
        let path = request.uri.path
        let isV1 = path.hasPrefix("/ocs/v1.php/")
        let route = String(path.dropFirst("/ocs/v1.php".count))
        let query = HTTP.query(request)
        let wantsJSON =
            query["format"] == "json" || (request.headers[.accept] ?? "").contains("application/json")
        func answer(_ result: OCSResult) -> Response { Self.ocsResponse(result, v1: isV1, json: wantsJSON) }

        let throttled = isThrottled(address: context.remoteAddress)
        let hasCredentials = request.headers[.authorization] != nil
        let isCapabilities = route == "/cloud/capabilities"
        if throttled && (hasCredentials || !isCapabilities) {
            return Self.ocsResponse(.failure(429, "Reached maximum delay"), v1: false, json: true, httpStatus: 429)
        }
        let auth = try authenticate(request, address: context.remoteAddress)
        if case .failed = auth {
            return answer(.failure(401, "Unauthorised"))
        }
        guard (request.headers[.ocsAPIRequest] ?? "").lowercased() == "true" else {
            return HTTP.json(412, #"{"message":"CSRF check failed"}"#)
        }
        if isCapabilities {
            var anonymous = true
            if case .user = auth { anonymous = false }
            let data = capabilities(anonymous: anonymous, throttled: throttled)
            var response = answer(.ok(data))
            let digest = Hex.encode(Insecure.MD5.hash(data: Data(data.json.utf8)))
            response.headers[.eTag] = "\"\(digest)\""
            return response
        }
        guard case .user(let user, let appPassword) = auth else {
            return answer(.failure(997, "Current user is not logged in"))
        }
        let method = request.method.rawValue
        var parameters = query
        if method == "POST" || method == "PUT" {
            for (key, value) in HTTP.form(try await HTTP.collect(request)) { parameters[key] = value }
        }
        let result: OCSResult
        switch (method, route) {
        case ("GET", "/cloud/user"): result = .ok(try cloudUser(user))
        case ("GET", "/core/getapppassword"):
            if appPassword != nil {
                result = .failure(403, "Password confirmation is required")
            } else {
                let name = request.headers[.userAgent] ?? "DevCloud client"
                result = .ok(.object([("apppassword", .string(try store.createAppPassword(user: user, name: name)))]))
            }
        case ("DELETE", "/core/apppassword"):
            if let appPassword {
                try store.deleteAppPassword(appPassword)
                result = .ok(.array([]))
            } else {
                result = .failure(403, "The session is not using an app password")
            }
        default:
            let sharesRoute = "/apps/files_sharing/api/v1/shares"
            if route == sharesRoute || route.hasPrefix(sharesRoute + "/") {
                let id = route == sharesRoute ? nil : Int64(route.dropFirst(sharesRoute.count + 1))
                if route != sharesRoute && id == nil {
                    result = .failure(404, "Wrong share ID, share does not exist")
                } else {
                    result = try sharesAPI(method: method, id: id, user: user, parameters: parameters)
                }
            } else {
                result = .failure(
                    404,
                    "Invalid query, please check the syntax. API specifications are here: http://www.freedesktop.org/wiki/Specifications/open-collaboration-services."
                )
            }
        }
        return answer(result)
    }

    /// The v1 envelope answers HTTP 200 with the real code in meta (092); v2 mirrors it into HTTP (093).
    static func ocsResponse(_ result: OCSResult, v1: Bool, json: Bool, httpStatus: Int? = nil) -> Response {
        let ok = result.statusCode == 200
        var meta: [(String, OCSValue)] = [
            ("status", .string(ok ? "ok" : "failure")),
            ("statuscode", .int(Int64(ok && v1 ? 100 : result.statusCode))),
            ("message", .string(result.message)),
        ]
        if v1 { meta += [("totalitems", .string("")), ("itemsperpage", .string(""))] }
        let envelope = OCSValue.object([("meta", .object(meta)), ("data", result.data)])
        // 997 is OCS's "not logged in", which HTTP says as 401.
        let status = httpStatus ?? (v1 ? 200 : (ok ? 200 : (result.statusCode == 997 ? 401 : result.statusCode)))
        if json { return HTTP.json(status, OCSValue.object([("ocs", envelope)]).json) }
        return HTTP.xml(status, "<?xml version=\"1.0\"?>\n" + envelope.xml(name: "ocs", indent: 0))
    }

    func capabilities(anonymous: Bool, throttled: Bool) -> OCSValue {
        guard
            var value = OCSValue.parse(
                json: CapabilitiesTemplate.json.replacingOccurrences(of: "{BASE}", with: baseURL))
        else { return .object([]) }
        value = value.setting(["capabilities", "bruteforce", "delay"], to: .int(throttled ? 25000 : 0))
        if anonymous, case .object(let pairs)? = value["capabilities"] {
            // Without a user there is no log level and no user theme (082).
            let kept = pairs.filter { ["bruteforce", "app_api", "theming"].contains($0.0) }
            value = value.setting(["capabilities"], to: .object(kept))
            if case .object(let appAPI)? = value["capabilities"]?["app_api"] {
                value = value.setting(["capabilities", "app_api"], to: .object(appAPI.filter { $0.0 == "version" }))
            }
            value = value.setting(["capabilities", "theming", "enabledThemes"], to: .array([]))
        }
        return value
    }

    func cloudUser(_ name: String) throws -> OCSValue {
        guard let user = try store.user(name) else { return .null }
        let used = usedBytes(user: name)
        let quota: OCSValue
        if let limit = user.quotaBytes {
            let relative = limit > 0 ? Int64((Double(used) / Double(limit) * 100).rounded()) : 0
            quota = .object([
                ("free", .int(max(0, limit - used))), ("used", .int(used)), ("total", .int(limit)),
                ("relative", .int(relative)), ("quota", .int(limit)),
            ])
        } else {
            quota = .object([
                ("free", .int(-3)), ("used", .int(used)), ("total", .int(-3)), ("relative", .int(0)),
                ("quota", .int(-3)),
            ])
        }
        var pairs: [(String, OCSValue)] = [
            ("enabled", .bool(true)), ("id", .string(name)), ("firstLoginTimestamp", .int(user.created)),
            ("lastLoginTimestamp", .int(user.created)), ("lastLogin", .int(user.created * 1000)),
            ("backend", .string("Database")), ("subadmin", .array([])), ("quota", quota), ("manager", .string("")),
            ("avatarScope", .string("v2-federated")), ("email", user.email.map { .string($0) } ?? .null),
            ("emailScope", .string("v2-federated")), ("additional_mail", .array([])),
            ("additional_mailScope", .array([])),
            ("displayname", .string(user.displayName)), ("display-name", .string(user.displayName)),
            ("displaynameScope", .string("v2-federated")),
        ]
        for (field, scope) in [
            ("phone", "v2-local"), ("address", "v2-local"), ("website", "v2-local"), ("twitter", "v2-local"),
            ("bluesky", "v2-local"), ("fediverse", "v2-local"), ("organisation", "v2-local"), ("role", "v2-local"),
            ("headline", "v2-local"), ("biography", "v2-local"),
        ] {
            pairs += [(field, .string("")), (field + "Scope", .string(scope))]
        }
        pairs += [
            ("profile_enabled", .string("1")), ("profile_enabledScope", .string("v2-local")),
            ("pronouns", .string("")), ("pronounsScope", .string("v2-federated")), ("groups", .array([])),
            ("language", .string("en")), ("locale", .string("")), ("timezone", .string("")), ("notify_email", .null),
            ("backendCapabilities", .object([("setDisplayName", .bool(true)), ("setPassword", .bool(true))])),
        ]
        return .object(pairs)
    }
}
