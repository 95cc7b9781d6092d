internal import Foundation
import HarpBasics

/// How the transport talks to the server: timeouts, concurrency, retries, trust.
public struct TransportOptions: Sendable {
    /// Give up connecting after this long.
    public var connectTimeoutMilliseconds = 15_000
    /// Abort a transfer that stays below `lowSpeedBytesPerSecond` for `lowSpeedSeconds`.
    public var lowSpeedBytesPerSecond = 1
    /// See `lowSpeedBytesPerSecond`.
    public var lowSpeedSeconds = 60
    /// The default of `maximumConcurrentTransfers`.
    public static let defaultConcurrentTransfers = 8
    /// At most this many transfers run at once (one thread and one easy handle, with its kept-alive connection, each).
    public var maximumConcurrentTransfers = defaultConcurrentTransfers
    /// Retries of idempotent requests after a 5xx or a network failure.
    public var retry = RetryPolicy()
    /// Sent as `User-Agent`; Login Flow v2 names the new app password after it.
    public var userAgent = "harp-cli"
    /// A CA bundle file; by default `CURL_CA_BUNDLE`, then `SSL_CERT_FILE`, else libcurl's own.
    public var caBundle: String?
    /// A CA certificate directory; by default `SSL_CERT_DIR`.
    public var caPath: String?

    /// Defaults, with the CA bundle taken from the usual curl environment variables.
    /// (libcurl itself reads `http_proxy`, `https_proxy`, `all_proxy` and `no_proxy`.)
    /// `environment` defaults to the process environment.
    public init(environment: [String: String]? = nil) {
        let environment = environment ?? ProcessInfo.processInfo.environment
        caBundle = environment["CURL_CA_BUNDLE"].nonEmpty ?? environment["SSL_CERT_FILE"].nonEmpty
        caPath = environment["SSL_CERT_DIR"].nonEmpty
    }
}

/// Bounded retries with jittered exponential backoff, for idempotent requests only.
public struct RetryPolicy: Sendable {
    /// Total attempts, the first included (1 means no retry).
    public var maximumAttempts = 4
    /// The delay before the first retry; doubled for each further one.
    public var baseDelay: Duration = .milliseconds(250)
    /// No delay exceeds this.
    public var maximumDelay: Duration = .seconds(8)

    /// The default policy: 4 attempts, 250 ms doubling, at most 8 s.
    public init() {}

    /// A policy with the given values.
    public init(maximumAttempts: Int, baseDelay: Duration, maximumDelay: Duration = .seconds(8)) {
        self.maximumAttempts = max(1, maximumAttempts)
        self.baseDelay = baseDelay
        self.maximumDelay = maximumDelay
    }

    /// The delay before retry number `retry` (1-based): "full jitter", uniformly random in
    /// [cap/2, cap] where cap = min(maximumDelay, baseDelay * 2^(retry-1)).
    func delay(beforeRetry retry: Int) -> Duration {
        Backoff(base: baseDelay, cap: maximumDelay).jitteredDelay(forAttempt: retry - 1)
    }
}

extension Optional where Wrapped == String {
    var nonEmpty: String? {
        guard let self, !self.isEmpty else { return nil }
        return self
    }
}
