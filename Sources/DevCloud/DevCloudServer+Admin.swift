import Foundation
import Hummingbird

/// The test-only admin surface under `/harp-devcloud/` (loopback peers only), for tests that run DevCloud as a
/// separate process. See docs/devcloud.md.
extension DevCloudServer {
    private struct FaultRequest: Decodable {
        var status: Int
        var count: Int
        var method: String?
        var pathPrefix: String?
    }

    private struct ACLRequest: Decodable {
        var owner: String
        var path: String
        var rules: [ACLRule]
    }

    private struct GrantRequest: Decodable {
        var user: String
        var loginToken: String?
    }

    func handleAdmin(_ request: Request, context: DevCloudContext) async throws -> Response {
        guard ["127.0.0.1", "::1", "::ffff:127.0.0.1"].contains(context.remoteAddress) else {
            return HTTP.text(403, "The DevCloud admin endpoints answer loopback peers only\n")
        }
        let route = String(request.uri.path.dropFirst("/harp-devcloud".count))
        let method = request.method.rawValue
        let decoder = JSONDecoder()
        func body() async throws -> Data { Data(try await HTTP.collect(request).utf8) }
        do {
            switch (method, route) {
            case ("GET", "/stats"):
                return HTTP.json(200, statsJSON())
            case ("POST", "/faults"):
                let fault = try decoder.decode(FaultRequest.self, from: try await body())
                guard (200...599).contains(fault.status), fault.count > 0 else {
                    return HTTP.json(400, #"{"error":"status must be 200...599 and count positive"}"#)
                }
                injectFaults(
                    status: fault.status, count: fault.count, method: fault.method, pathPrefix: fault.pathPrefix)
                return HTTP.json(200, #"{"ok":true}"#)
            case ("DELETE", "/faults"):
                state.withLock { $0.faults.removeAll() }
                return HTTP.json(200, #"{"ok":true}"#)
            case ("POST", "/users"):
                try addUser(try decoder.decode(DevCloudConfiguration.User.self, from: try await body()))
                return HTTP.json(200, #"{"ok":true}"#)
            case ("POST", "/shares"):
                let id = try addShare(try decoder.decode(DevCloudConfiguration.Share.self, from: try await body()))
                return HTTP.json(200, OCSValue.object([("ok", .bool(true)), ("id", .int(Int64(id)))]).json)
            case ("POST", "/acl"):
                let acl = try decoder.decode(ACLRequest.self, from: try await body())
                try setACL(owner: acl.owner, path: acl.path, rules: acl.rules)
                return HTTP.json(200, #"{"ok":true}"#)
            case ("POST", "/bruteforce/reset"):
                resetBruteForce()
                return HTTP.json(200, #"{"ok":true}"#)
            case ("POST", "/loginflow/grant"):
                let grant = try decoder.decode(GrantRequest.self, from: try await body())
                let granted = grantLoginFlow(user: grant.user, loginToken: grant.loginToken)
                return HTTP.json(granted ? 200 : 404, OCSValue.object([("ok", .bool(granted))]).json)
            default:
                return HTTP.json(404, #"{"error":"no such DevCloud admin endpoint"}"#)
            }
        } catch let error as DecodingError {
            return HTTP.json(400, OCSValue.object([("error", .string("bad JSON body: \(error)"))]).json)
        } catch let error as DevCloudError {
            return HTTP.json(400, OCSValue.object([("error", .string(error.description))]).json)
        }
    }

    /// `{"bytesSent":N,"bytesSentByUser":{...},"requests":N,"requestsByMethod":{"GET":N,...},"egress":{...}}`
    func statsJSON() -> String {
        let (total, byUser, requests, byMethod) = state.withLock {
            ($0.bytesSentTotal, $0.bytesSentByUser, $0.requests, $0.requestsByMethod)
        }
        var pairs: [(String, OCSValue)] = [
            ("bytesSent", .int(total)),
            ("bytesSentByUser", .object(byUser.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
            ("requests", .int(Int64(requests))),
            (
                "requestsByMethod",
                .object(byMethod.sorted { $0.key < $1.key }.map { ($0.key, .int(Int64($0.value))) })
            ),
        ]
        if let egress {
            let accounting = egress.accounting
            pairs.append(
                (
                    "egress",
                    .object([
                        ("bytesPerSecond", .int(Int64(egress.bytesPerSecond))),
                        ("bytesGranted", .int(accounting.bytesGranted)),
                        ("delayMilliseconds", .int(Int64(accounting.delaySeconds * 1000))),
                    ])
                ))
        }
        return OCSValue.object(pairs).json
    }
}
