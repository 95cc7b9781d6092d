public import HTTPTypes

public import struct Foundation.Data
public import struct Foundation.URL

/// Where the bytes of a request body come from.
public enum RequestBody: Sendable {
    /// No body.
    case none
    /// A body held in memory (XML, form fields, small files).
    case data(Data)
    /// `length` bytes of the file at `path`, read from `offset` as curl asks for them:
    /// the file is never held in memory as a whole.
    case file(path: String, offset: Int64, length: Int64)

    var length: Int64 {
        switch self {
        case .none: 0
        case .data(let data): Int64(data.count)
        case .file(_, _, let length): length
        }
    }
}

/// One HTTP request as the transport sends it. Credentials are not part of the request;
/// the transport adds them from the client's `Credentials`.
struct HTTPRequest: Sendable {
    var method: String
    var url: URL
    var headers: HTTPFields = [:]
    var body: RequestBody = .none
    /// When set, a response body is trusted only if the server answered 206 with a
    /// `Content-Range` that starts at `range.first` and does not pass `range.last`.
    var range: ByteRange? = nil
    /// Requests that may be repeated after a 5xx or a network failure.
    var isIdempotent: Bool
    /// The path relative to the user's root (or the endpoint), used in error messages and logs.
    var displayPath: String
    /// Ask for gzip/deflate (only for XML/JSON answers that are buffered, never for byte ranges).
    var acceptCompressed = false

    init(method: String, url: URL, displayPath: String, isIdempotent: Bool? = nil) {
        self.method = method
        self.url = url
        self.displayPath = displayPath
        self.isIdempotent =
            isIdempotent ?? ["GET", "HEAD", "PROPFIND", "OPTIONS"].contains(method)
    }
}

/// The status line and headers of a response.
public struct ResponseHead: Sendable {
    /// The final HTTP status (interim 1xx answers are skipped).
    public var status: Int
    /// The final response's headers.
    public var headers: HTTPFields
}

/// A response whose body was collected in memory.
struct BufferedResponse: Sendable {
    var head: ResponseHead
    var body: Data
    var status: Int { head.status }
}
