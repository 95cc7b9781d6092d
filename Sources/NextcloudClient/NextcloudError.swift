internal import Foundation

/// Every failure the Nextcloud client reports, with a kind a program can act on and a
/// one-line message a person understands.
///
/// The message never contains credentials: the client only ever puts the server's path,
/// status and the server's own error text in it, and it removes its own secrets from the
/// server's text before keeping it.
public struct NextcloudError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The cases a user or a program must tell apart.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// 401: the user name or app password is wrong, or the app password was revoked. Never retried.
        case badCredentials
        /// 404: Nextcloud answers 404 both for a missing path and for one the user may not see.
        case notFoundOrNoAccess
        /// 403: the user can see the item but may not do this (e.g. write into a read-only share).
        case forbidden
        /// 423: the file is locked by someone else.
        case locked
        /// 507: the user's quota is exhausted.
        case quotaExceeded
        /// 429: the server throttles this address, after too many failed logins.
        case throttled
        /// 412: a condition failed; with `If-Match` it means the file changed.
        case preconditionFailed
        /// 405/409: the target exists already, or its parent folder is missing.
        case conflict
        /// 416: the requested byte range starts past the end of the file.
        case rangeNotSatisfiable
        /// 5xx, after the bounded retries.
        case serverError
        /// Could not reach the server, the connection broke, or it timed out.
        case network
        /// The TLS handshake or certificate check failed.
        case tls
        /// The server answered something that is not what the protocol promises.
        case malformedResponse
        /// A local file could not be read or written.
        case localIO
        /// Any other HTTP status.
        case unexpectedStatus
    }

    /// What went wrong.
    public let kind: Kind
    /// The HTTP status, when there was one.
    public let status: Int?
    /// The path relative to the user's root (or the endpoint) that the request was for.
    public let path: String?
    /// Extra detail: the server's own message or the transport's, already free of secrets.
    public let detail: String?

    /// A new error.
    public init(_ kind: Kind, status: Int? = nil, path: String? = nil, detail: String? = nil) {
        self.kind = kind
        self.status = status
        self.path = path
        self.detail = detail.flatMap { $0.isEmpty ? nil : String($0.prefix(300)) }
    }

    /// The one-line message.
    public var description: String {
        var line = summary
        if let path { line += " (\(path))" }
        if let detail { line += ": \(detail)" }
        return line
    }

    private var summary: String {
        switch kind {
        case .badCredentials:
            "The server rejected the user name or app password (401); log in again with `harp-cli login`"
        case .notFoundOrNoAccess:
            "Not found, or you have no access to it: Nextcloud answers 404 for both"
        case .forbidden:
            "Forbidden (403): you can see this item but may not change it, e.g. a read-only share"
        case .locked:
            "The file is locked by another user or app (423); try again when it is unlocked"
        case .quotaExceeded:
            "Not enough space left in your Nextcloud quota (507)"
        case .throttled:
            "The server throttles this address after too many failed logins (429); wait, or ask an admin to reset it"
        case .preconditionFailed:
            "The file changed on the server while we worked on it (412)"
        case .conflict:
            "Conflict: the target already exists or its parent folder is missing"
                + (status.map { " (\($0))" } ?? "")
        case .rangeNotSatisfiable:
            "The requested byte range lies beyond the end of the file (416)"
        case .serverError:
            "The server failed" + (status.map { " (\($0))" } ?? "") + " and kept failing after retries"
        case .network:
            "Could not talk to the server (network failure)"
        case .tls:
            "The secure connection to the server failed (TLS); check the certificate or CURL_CA_BUNDLE"
        case .malformedResponse:
            "The server's answer did not make sense"
        case .localIO:
            "A local file could not be read or written"
        case .unexpectedStatus:
            "The server answered with an unexpected status" + (status.map { " \($0)" } ?? "")
        }
    }

    /// The kind Nextcloud means by an HTTP error status.
    public static func kind(forStatus status: Int) -> Kind {
        switch status {
        case 401: .badCredentials
        case 403: .forbidden
        case 404: .notFoundOrNoAccess
        case 405, 409: .conflict
        case 412: .preconditionFailed
        case 416: .rangeNotSatisfiable
        case 423: .locked
        case 429: .throttled
        case 507: .quotaExceeded
        case 500...599: .serverError
        default: .unexpectedStatus
        }
    }

    /// Returns a copy whose detail has every occurrence of `secrets` replaced.
    func redacting(_ secrets: [String]) -> NextcloudError {
        guard var text = detail else { return self }
        for secret in secrets where !secret.isEmpty {
            text = text.replacingOccurrences(of: secret, with: "<redacted>")
        }
        return NextcloudError(kind, status: status, path: path, detail: text)
    }
}
