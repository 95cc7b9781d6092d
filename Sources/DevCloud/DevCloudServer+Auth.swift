import Foundation
import Hummingbird

/// Who a request is, after looking at its `Authorization` header.
enum Authentication {
    /// No `Authorization` header at all.
    case anonymous
    /// Credentials that did not match (counted by the brute-force throttle).
    case failed
    /// A user; `appPassword` is set when the secret used was an app password (Basic or Bearer).
    case user(String, appPassword: String?)
}

extension DevCloudServer {
    /// Checks Basic (account password or app password) and Bearer (app password) credentials.
    /// Secrets are never logged; a failure is recorded against the remote address.
    func authenticate(_ request: Request, address: String) throws -> Authentication {
        guard let header = request.headers[.authorization] else { return .anonymous }
        let result: Authentication
        if header.lowercased().hasPrefix("basic ") {
            let encoded = header.dropFirst(6).trimmingCharacters(in: .whitespaces)
            guard let data = Data(base64Encoded: encoded), let decoded = String(data: data, encoding: .utf8),
                let colon = decoded.firstIndex(of: ":")
            else {
                recordFailure(address: address)
                return .failed
            }
            let name = String(decoded[..<colon])
            let secret = String(decoded[decoded.index(after: colon)...])
            if try store.checkAccountPassword(user: name, password: secret) {
                result = .user(name, appPassword: nil)
            } else if let owner = try store.appPasswordUser(secret), owner == name {
                result = .user(name, appPassword: secret)
            } else {
                result = .failed
            }
        } else if header.lowercased().hasPrefix("bearer ") {
            let token = header.dropFirst(7).trimmingCharacters(in: .whitespaces)
            if let owner = try store.appPasswordUser(token) {
                result = .user(owner, appPassword: token)
            } else {
                result = .failed
            }
        } else {
            result = .failed
        }
        if case .failed = result {
            recordFailure(address: address)
            logger.info("devcloud.auth failed", metadata: ["address": "\(address)"])
        }
        return result
    }

    func recordFailure(address: String) {
        let window = configuration.bruteForceWindowSeconds
        state.withLock { state in
            let now = Date()
            var list = state.failures[address, default: []].filter { now.timeIntervalSince($0) < window }
            list.append(now)
            state.failures[address] = list
        }
    }

    /// True once an address has failed `bruteForceMaxFailures` times within the window.
    func isThrottled(address: String) -> Bool {
        let window = configuration.bruteForceWindowSeconds
        let limit = configuration.bruteForceMaxFailures
        return state.withLock { state in
            let now = Date()
            let recent = state.failures[address, default: []].filter { now.timeIntervalSince($0) < window }
            state.failures[address] = recent.isEmpty ? nil : recent
            return recent.count >= limit
        }
    }

    /// Nextcloud's 401 for WebDAV, with the message that tells "no credentials" from "wrong credentials".
    static func davUnauthorized(sentCredentials: Bool) -> DAVError {
        let message =
            sentCredentials
            ? "No public access to this resource., AppAPIAuth has not passed, This request is not for a federated calendar, Username or password was incorrect, No 'Authorization: Bearer' header found. Either the client didn't send one, or the server is mis-configured, Username or password was incorrect"
            : "No public access to this resource., AppAPIAuth has not passed, This request is not for a federated calendar, No 'Authorization: Basic' header found. Either the client didn't send one, or the server is misconfigured, No 'Authorization: Bearer' header found. Either the client didn't send one, or the server is mis-configured, No 'Authorization: Basic' header found. Either the client didn't send one, or the server is misconfigured"
        return DAVError(
            401, "Sabre\\DAV\\Exception\\NotAuthenticated", message,
            headers: [.wwwAuthenticate: "Basic realm=\"Nextcloud\", charset=\"UTF-8\""])
    }

    /// The 429 body of Nextcloud's DAV throttle.
    static var davTooManyRequests: Response {
        HTTP.xml(
            429,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:error xmlns:d=\"DAV:\" xmlns:s=\"http://sabredav.org/ns\" xmlns:o=\"http://owncloud.org/ns\">\n  <s:exception>OCA\\DAV\\Connector\\Sabre\\Exception\\TooManyRequests</s:exception>\n  <s:message/>\n  <o:hint xmlns:o=\"o:\">too many requests</o:hint>\n</d:error>\n"
        )
    }
}
