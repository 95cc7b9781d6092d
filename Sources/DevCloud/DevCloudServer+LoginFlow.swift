import Foundation
import Hummingbird

/// Login Flow v2 (094–103). The browser half is a plain form (DevCloud's own, not Nextcloud's pages); tests grant
/// flows without a browser through `autoGrantLoginFlowUser`, ``DevCloudServer/grantLoginFlow(user:loginToken:)``
/// or `POST /harp-devcloud/loginflow/grant`.
extension DevCloudServer {
    static func randomToken(_ length: Int) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        return String((0..<length).map { _ in alphabet.randomElement()! })
    }

    func handleLoginFlow(_ request: Request, context: DevCloudContext) async throws -> Response {
        let path = request.uri.path
        let method = request.method.rawValue
        let emptyNotFound = HTTP.json(404, "[]")
        switch (method, path) {
        case ("POST", "/index.php/login/v2"):
            let flow = LoginFlow(
                pollToken: Self.randomToken(128), loginToken: Self.randomToken(128),
                appName: request.headers[.userAgent] ?? "DevCloud client", created: Date(),
                grantedUser: configuration.autoGrantLoginFlowUser)
            state.withLock { $0.loginFlows[flow.pollToken] = flow }
            let body = OCSValue.object([
                (
                    "poll",
                    .object([
                        ("token", .string(flow.pollToken)), ("endpoint", .string(baseURL + "/index.php/login/v2/poll")),
                    ])
                ),
                ("login", .string(baseURL + "/index.php/login/v2/flow/" + flow.loginToken)),
            ])
            return HTTP.json(200, body.json)
        case ("POST", "/index.php/login/v2/poll"):
            let token = HTTP.form(try await HTTP.collect(request))["token"] ?? ""
            let granted = state.withLock { state -> LoginFlow? in
                guard let flow = state.loginFlows[token], flow.grantedUser != nil else { return nil }
                state.loginFlows[token] = nil
                return flow
            }
            guard let granted, let user = granted.grantedUser else { return emptyNotFound }
            let appPassword = try store.createAppPassword(user: user, name: granted.appName)
            let body = OCSValue.object([
                ("server", .string(baseURL)), ("loginName", .string(user)), ("appPassword", .string(appPassword)),
            ])
            logger.info("devcloud.loginflow.delivered", metadata: ["user": "\(user)"])
            return HTTP.json(200, body.json)
        default:
            let prefix = "/index.php/login/v2/flow/"
            guard path.hasPrefix(prefix) else { return emptyNotFound }
            let loginToken = String(path.dropFirst(prefix.count))
            let exists = state.withLock {
                $0.loginFlows.values.contains { $0.loginToken == loginToken && $0.grantedUser == nil }
            }
            guard exists else {
                return HTTP.response(
                    404, headers: [.contentType: "text/html; charset=utf-8"],
                    body: Self.page("This login link is no longer valid."))
            }
            if method == "GET" {
                let form =
                    "<form method=\"post\"><p><label>User <input name=\"user\"></label></p><p><label>Password <input name=\"password\" type=\"password\"></label></p><p><button>Grant access</button></p></form>"
                return HTTP.response(
                    200, headers: [.contentType: "text/html; charset=utf-8"], body: Self.page(form))
            }
            guard method == "POST" else { return emptyNotFound }
            if isThrottled(address: context.remoteAddress) { return HTTP.text(429, "Too many requests\n") }
            let fields = HTTP.form(try await HTTP.collect(request))
            let user = fields["user"] ?? ""
            guard try store.checkAccountPassword(user: user, password: fields["password"] ?? "") else {
                recordFailure(address: context.remoteAddress)
                return HTTP.response(
                    403, headers: [.contentType: "text/html; charset=utf-8"],
                    body: Self.page("Wrong user or password."))
            }
            _ = grantLoginFlow(user: user, loginToken: loginToken)
            return HTTP.response(
                200, headers: [.contentType: "text/html; charset=utf-8"],
                body: Self.page("Account connected. You can close this window."))
        }
    }

    static func page(_ content: String) -> String {
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>DevCloud login</title></head><body><h1>DevCloud</h1>\(content)</body></html>\n"
    }
}
