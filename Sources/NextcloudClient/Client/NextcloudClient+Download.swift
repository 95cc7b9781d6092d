public import Foundation

extension NextcloudClient {
    /// What a download received.
    public struct DownloadInfo: Sendable, Hashable {
        /// 200 for a whole file, 206 for a range.
        public var status: Int
        /// The file's etag (from `OC-ETag` or `ETag`), quotes included.
        public var etag: String?
        /// The range the server sent (nil for a whole file).
        public var range: ByteRange?
        /// The file's total size, from `Content-Range` or `Content-Length`.
        public var totalSize: Int64?
        /// Bytes written into the sink.
        public var bytesWritten: Int64
        /// `OC-Checksum` as the uploader claimed it; never proof of the content.
        public var claimedChecksum: String?
    }

    /// GET of `path` into `sink`, streaming, with bounded memory.
    ///
    /// With `range`, one `Range: bytes=a-b` is sent and the body reaches the sink only if the
    /// server answers 206 with a `Content-Range` that starts at `a` and ends at `b` (or at the
    /// end of the file, when `b` lies past it). A 200 — the server ignoring the range — is
    /// refused with `.malformedResponse` before a byte is written. With `ifMatch` (an etag
    /// from a PROPFIND) a file that changed meanwhile gives `.preconditionFailed`.
    ///
    /// This is how the swarm engine fetches a range into its partial file:
    /// `try await client.download(path, range: ByteRange(offset: o, length: n), ifMatch: etag,
    /// into: FileRangeSink(descriptor: fd, offset: o))`.
    @discardableResult
    public func download(
        _ path: String, range: ByteRange? = nil, ifMatch: String? = nil, into sink: any ByteSink
    ) async throws -> DownloadInfo {
        let normalized = PathEncoding.normalize(path)
        var request = HTTPRequest(method: "GET", url: try filesURL(normalized), displayPath: normalized)
        request.range = range
        if let ifMatch { request.headers[.ifMatch] = ifMatch }
        let outcome = try await send(request, sink: sink)
        return try Self.downloadInfo(outcome, requested: range, path: normalized)
    }

    /// GET of a (small) file or range into memory; at most `limit` bytes are accepted.
    public func data(
        at path: String, range: ByteRange? = nil, ifMatch: String? = nil, limit: Int = 64 << 20
    ) async throws -> (Data, DownloadInfo) {
        let sink = DataSink(limit: limit)
        let info = try await download(path, range: range, ifMatch: ifMatch, into: sink)
        return (sink.data, info)
    }

    static func downloadInfo(
        _ outcome: CurlTransfer.Outcome, requested: ByteRange?, path: String
    ) throws -> DownloadInfo {
        let headers = outcome.head.headers
        var info = DownloadInfo(
            status: outcome.head.status, etag: headers[.ocETag] ?? headers[.eTag], range: nil, totalSize: nil,
            bytesWritten: outcome.bytesToSink, claimedChecksum: headers[.ocChecksum])
        if requested != nil, let value = headers[.contentRange],
            case .satisfied(let got, let total) = ContentRange(headerValue: value)
        {
            info.range = got
            info.totalSize = total
            guard outcome.bytesToSink == got.length else {
                throw NextcloudError(
                    .network, status: outcome.head.status, path: path,
                    detail: "the connection ended after \(outcome.bytesToSink) of \(got.length) bytes")
            }
        } else {
            info.totalSize = headers[.contentLength].flatMap { Int64($0) }
        }
        return info
    }
}
