public import Foundation
public import Logging

/// Getting an app password: Login Flow v2, or a one-time exchange of the account password.
///
/// Nothing here logs or prints a password or a poll token.
public final class Authenticator: Sendable {
    /// The server's base URL.
    public let server: URL
    private let transport: CurlTransport
    private let logger: Logger

    /// An authenticator for `server`. `options.userAgent` becomes the app password's name.
    public init(
        server: URL, options: TransportOptions = TransportOptions(), logger: Logger = Logger(label: "harp.nextcloud")
    ) {
        self.server = server
        self.transport = CurlTransport(options: options, logger: logger)
        self.logger = logger
    }

    /// Starts Login Flow v2 (`POST /index.php/login/v2`); show `login` to the user.
    public func startLoginFlow() async throws -> LoginFlow {
        var request = HTTPRequest(
            method: "POST", url: try NextcloudClient.url(base: server, "/index.php/login/v2"),
            displayPath: "/index.php/login/v2",
            isIdempotent: false)
        request.body = .data(Data())
        let body = try await send(request, credentials: nil)
        guard let flow = try? JSONDecoder().decode(LoginFlow.self, from: body), URL(string: flow.poll.endpoint) != nil
        else {
            throw NextcloudError(.malformedResponse, path: "/index.php/login/v2", detail: "not a Login Flow v2 answer")
        }
        return flow
    }

    /// Polls once: the credentials once the user granted access, nil while waiting (404).
    public func pollLoginFlow(_ flow: LoginFlow) async throws -> LoginFlowResult? {
        guard Self.isHTTP(flow.poll.endpoint), let endpoint = URL(string: flow.poll.endpoint) else {
            throw NextcloudError(.malformedResponse, path: "/index.php/login/v2/poll", detail: "bad poll endpoint")
        }
        var request = HTTPRequest(
            method: "POST", url: endpoint, displayPath: "/index.php/login/v2/poll", isIdempotent: false)
        request.headers = [.contentType: "application/x-www-form-urlencoded"]
        request.body = .data(Data(PathEncoding.formBody([("token", flow.poll.token)]).utf8))
        let body: Data
        do {
            body = try await send(request, credentials: nil, secrets: [flow.poll.token])
        } catch let error as NextcloudError where error.kind == .notFoundOrNoAccess {
            return nil
        }
        guard let result = try? JSONDecoder().decode(LoginFlowResult.self, from: body) else {
            throw NextcloudError(
                .malformedResponse, path: "/index.php/login/v2/poll", detail: "not a Login Flow v2 result")
        }
        return result
    }

    /// Polls every `interval` until the user grants access or `timeout` passes
    /// (then `.network` with a detail saying the login timed out).
    public func waitForLoginFlow(
        _ flow: LoginFlow, interval: Duration = .seconds(2), timeout: Duration = .seconds(20 * 60)
    ) async throws -> LoginFlowResult {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            if let result = try await pollLoginFlow(flow) { return result }
            guard clock.now + interval < deadline else {
                throw NextcloudError(
                    .network, path: "/index.php/login/v2/poll", detail: "the login was not granted in time")
            }
            try await Task.sleep(for: interval)
        }
    }

    /// Exchanges the account password once for an app password
    /// (`GET /ocs/v2.php/core/getapppassword`). The account password is used for this one
    /// request and kept nowhere. A 401 is not retried.
    public func exchangePassword(user: String, password: String) async throws -> Credentials {
        let endpoint = "/ocs/v2.php/core/getapppassword"
        let request = try NextcloudClient.ocsRequest(
            base: server, method: "GET", endpoint: endpoint, query: [], form: nil)
        let body = try await send(request, credentials: BasicCredentials(user: user, password: password))
        struct Answer: Decodable { var apppassword: String }
        let answer = try OCSEnvelope.decode(Answer.self, json: body, path: endpoint)
        return Credentials(server: server, user: user, appPassword: answer.apppassword)
    }

    private static func isHTTP(_ text: String) -> Bool {
        guard let scheme = URL(string: text)?.scheme?.lowercased() else { return false }
        return scheme == "http" || scheme == "https"
    }

    private func send(
        _ request: HTTPRequest, credentials: BasicCredentials?, secrets: [String] = []
    ) async throws -> Data {
        let sink = DataSink(limit: 1 << 20)
        do {
            _ = try await NextcloudClient.send(
                request, credentials: credentials, sink: sink, transport: transport, logger: logger)
        } catch let error as NextcloudError {
            throw error.redacting(secrets)
        }
        return sink.data
    }
}
