internal import Foundation
public import Logging
internal import Synchronization

/// An async client for one Nextcloud account: WebDAV (PROPFIND, Range GET, PUT, chunked
/// upload v2, MKCOL) and OCS (user, capabilities, shares), over libcurl.
///
/// Every request runs on the transport's own threads, never on Swift's cooperative pool;
/// cancelling the calling task aborts the transfer. Connections are reused between requests.
/// GET, HEAD, PROPFIND and chunk PUTs are retried after a 5xx or a network failure with
/// jittered exponential backoff (`TransportOptions.retry`); a 401 is never retried, since
/// Nextcloud locks the whole address out after about eleven failures.
public final class NextcloudClient: Sendable {
    /// The account this client acts for.
    public let credentials: Credentials
    let transport: CurlTransport
    let logger: Logger
    /// Set by the first 401: from then on this client refuses to send its credentials again.
    private let credentialsRejected = Atomic<Bool>(false)

    /// A client for `credentials`. Logs go to `logger` (structured, never a secret).
    public init(
        credentials: Credentials, options: TransportOptions = TransportOptions(),
        logger: Logger = Logger(label: "harp.nextcloud")
    ) {
        self.credentials = credentials
        self.transport = CurlTransport(options: options, logger: logger)
        self.logger = logger
    }

    var basic: BasicCredentials {
        BasicCredentials(user: credentials.user, password: credentials.appPassword)
    }

    /// The percent-decoded href that stands for the user's root folder.
    var filesRootHref: String {
        credentials.server.serverBasePath + "/remote.php/dav/files/" + credentials.userID
    }

    /// The WebDAV URL of `path` (relative to the user's root).
    func filesURL(_ path: String, folder: Bool = false) throws(NextcloudError) -> URL {
        let encoded = PathEncoding.encodePath(path)
        return try url(
            "/remote.php/dav/files/" + PathEncoding.encodeSegment(credentials.userID)
                + (encoded.isEmpty ? "/" : encoded + (folder ? "/" : "")))
    }

    /// An absolute URL below the server base from an already-encoded path (and query).
    func url(_ encodedPathAndQuery: String) throws(NextcloudError) -> URL {
        try Self.url(base: credentials.server, encodedPathAndQuery)
    }

    static func url(base: URL, _ encodedPathAndQuery: String) throws(NextcloudError) -> URL {
        guard let url = URL(string: base.normalizedServerBase + encodedPathAndQuery) else {
            throw NextcloudError(.malformedResponse, path: encodedPathAndQuery, detail: "cannot form a URL")
        }
        return url
    }

    /// Sends `request`, collects a 2xx body in memory (up to `limit`) and turns any other
    /// status into a `NextcloudError`.
    func send(_ request: HTTPRequest, limit: Int = 64 << 20) async throws -> BufferedResponse {
        let sink = DataSink(limit: limit)
        let outcome = try await send(request, sink: sink)
        return BufferedResponse(head: outcome.head, body: sink.data)
    }

    /// Sends `request` with the body going into `sink` on success; errors become `NextcloudError`.
    ///
    /// After a 401 the client sends nothing more with the same credentials and fails at once:
    /// Nextcloud counts every rejected login towards locking out the whole address, and a swarm
    /// engine with many requests in flight would otherwise use up that budget in a moment.
    func send(_ request: HTTPRequest, sink: any ByteSink) async throws -> CurlTransfer.Outcome {
        guard !credentialsRejected.load(ordering: .relaxed) else {
            throw NextcloudError(
                .badCredentials, status: 401, path: request.displayPath,
                detail: "not sent: the server already rejected these credentials")
        }
        do {
            return try await Self.send(request, credentials: basic, sink: sink, transport: transport, logger: logger)
        } catch let error as NextcloudError where error.kind == .badCredentials {
            if !credentialsRejected.exchange(true, ordering: .relaxed) {
                logger.warning(
                    "credentials rejected; no further requests", metadata: ["nc.path": "\(request.displayPath)"])
            }
            throw error
        }
    }

    /// True once the server answered 401 to this client.
    public var credentialsWereRejected: Bool { credentialsRejected.load(ordering: .relaxed) }

    static func send(
        _ request: HTTPRequest, credentials: BasicCredentials?, sink: any ByteSink, transport: CurlTransport,
        logger: Logger
    ) async throws -> CurlTransfer.Outcome {
        let secrets = credentials.map { [$0.password] } ?? []
        let outcome: CurlTransfer.Outcome
        do {
            outcome = try await transport.perform(request, credentials: credentials, sink: sink)
        } catch let error as NextcloudError {
            logger.debug(
                "request failed",
                metadata: [
                    "http.method": "\(request.method)", "nc.path": "\(request.displayPath)",
                    "error.kind": "\(error.kind)",
                ])
            throw error.redacting(secrets)
        }
        let status = outcome.head.status
        logger.debug(
            "request finished",
            metadata: [
                "http.method": "\(request.method)", "nc.path": "\(request.displayPath)", "http.status": "\(status)",
                "bytes": "\(outcome.bytesToSink)",
            ])
        guard (200..<300).contains(status) else {
            throw errorFor(status: status, body: outcome.errorBody, path: request.displayPath).redacting(secrets)
        }
        return outcome
    }

    /// The error for a non-2xx answer, with the server's own message as detail.
    static func errorFor(status: Int, body: Data, path: String) -> NextcloudError {
        var detail: String?
        if let dav = DAVErrorBody(body) {
            detail = dav.message.isEmpty ? dav.exception.split(separator: "\\").last.map(String.init) : dav.message
        } else if let meta = OCSEnvelope.meta(json: body) {
            detail = meta.message
        } else if let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
            let message = object["message"] as? String
        {
            detail = message
        }
        if status == 0 {
            return NextcloudError(.malformedResponse, path: path, detail: "no HTTP status line")
        }
        return NextcloudError(NextcloudError.kind(forStatus: status), status: status, path: path, detail: detail)
    }
}
