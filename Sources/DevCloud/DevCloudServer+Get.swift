import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix

/// Blocking file calls, run on NIO's thread pool so no event loop or cooperative thread waits on the disk.
enum BlockingIO {
    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }
}

/// A single byte range of a GET, already checked against the file size.
struct ByteRange: Equatable {
    var start: Int64
    var end: Int64  // inclusive

    var length: Int64 { end - start + 1 }

    enum Parsed: Equatable {
        case none
        case range(ByteRange)
        case unsatisfiable(start: Int64)
    }

    /// `bytes=a-b`, `bytes=a-`, `bytes=-n`; a multi-range or malformed header is ignored (whole file, as 027).
    static func parse(_ header: String?, size: Int64) -> Parsed {
        guard let header, header.hasPrefix("bytes="), !header.contains(",") else { return .none }
        let spec = header.dropFirst(6).trimmingCharacters(in: .whitespaces)
        guard let dash = spec.firstIndex(of: "-") else { return .none }
        let first = spec[..<dash]
        let last = spec[spec.index(after: dash)...]
        if first.isEmpty {
            guard let suffix = Int64(last), suffix > 0 else { return .none }
            if size == 0 { return .unsatisfiable(start: 0) }
            return .range(ByteRange(start: max(0, size - suffix), end: size - 1))
        }
        guard let start = Int64(first) else { return .none }
        let end = last.isEmpty ? size - 1 : (Int64(last) ?? -1)
        guard end >= start || last.isEmpty else { return .none }
        if start > size - 1 { return .unsatisfiable(start: start) }
        return .range(ByteRange(start: start, end: min(end, size - 1)))
    }
}

extension DevCloudServer {
    func get(_ request: Request, target: DAVTarget, head: Bool) async throws -> Response {
        let item = try existingItem(target)
        guard !item.isFolder else {
            throw DAVError(501, "Sabre\\DAV\\Exception\\NotImplemented", "GET is only implemented on File objects")
        }
        let url = diskURL(owner: item.location.owner, path: item.location.ownerPath)
        return try fileResponse(
            request, url: url, size: item.size, etag: "\"\(item.record.etag)\"", mtime: item.record.mtime,
            name: item.location.name, checksum: item.record.checksum, user: target.user, head: head)
    }

    /// GET/HEAD of a file with Nextcloud's conditionals and single-range semantics (018–031), streamed.
    func fileResponse(
        _ request: Request, url: URL, size: Int64, etag: String, mtime: Int64, name: String, checksum: String?,
        user: String, head: Bool, contentType: String? = nil
    ) throws -> Response {
        let lastModified = HTTP.httpDate(mtime)
        if let ifMatch = request.headers[.ifMatch], !Self.etagMatches(ifMatch, etag) {
            var error = DAVError.preconditionFailed(
                "An If-Match header was specified, but none of the specified ETags matched.", header: "If-Match")
            error.headers = [.eTag: etag]
            throw error
        }
        if let ifNoneMatch = request.headers[.ifNoneMatch], Self.etagMatches(ifNoneMatch, etag) {
            return HTTP.response(304, headers: [.eTag: etag])
        }
        var range = ByteRange.parse(request.headers[.range], size: size)
        if let ifRange = request.headers[.ifRange], ifRange.trimmingCharacters(in: .whitespaces) != etag {
            range = .none
        }
        if case .unsatisfiable(let start) = range {
            throw DAVError(
                416, "Sabre\\DAV\\Exception\\RequestedRangeNotSatisfiable",
                "The start offset (\(start)) exceeded the size of the entity (\(size))",
                headers: [.lastModified: lastModified, .eTag: etag])
        }
        let escapedName = name.addingPercentEncoding(withAllowedCharacters: Self.unreserved) ?? name
        var headers: HTTPFields = [
            .contentType: contentType ?? MimeType.of(name), .lastModified: lastModified, .eTag: etag,
        ]
        let status: Int
        let offset: Int64
        let length: Int64
        if case .range(let byteRange) = range {
            status = 206
            offset = byteRange.start
            length = byteRange.length
            headers.append(HTTPField(name: .contentRange, value: "bytes \(byteRange.start)-\(byteRange.end)/\(size)"))
        } else {
            status = 200
            offset = 0
            length = size
        }
        headers.append(HTTPField(name: .contentLength, value: String(length)))
        headers.append(
            contentsOf: [
                .ocETag: etag,
                .contentDisposition: "attachment; filename*=UTF-8''\(escapedName); filename=\"\(name)\"",
            ] as HTTPFields)
        if let checksum { headers.append(HTTPField(name: .ocChecksum, value: checksum)) }
        headers.append(HTTPField(name: .xAccelBuffering, value: "no"))
        if head {
            return Response(status: HTTP.status(status), headers: headers, body: ResponseBody())
        }
        let body = ResponseBody(contentLength: Int(length)) { [self] writer in
            try await streamFile(url: url, offset: offset, length: length, user: user, writer: &writer)
            try await writer.finish(nil)
        }
        return Response(status: HTTP.status(status), headers: headers, body: body)
    }

    static let unreserved: CharacterSet = {
        var set = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        set.insert(charactersIn: "-._~")
        return set
    }()

    static func etagMatches(_ header: String, _ etag: String) -> Bool {
        header.split(separator: ",").contains { candidate in
            let value = candidate.trimmingCharacters(in: .whitespaces)
            return value == "*" || value == etag || value == "W/" + etag
        }
    }

    /// Streams `length` bytes from `offset` in bounded chunks, paced by the egress limit, counting what was written.
    func streamFile(
        url: URL, offset: Int64, length: Int64, user: String, writer: inout any ResponseBodyWriter
    ) async throws {
        let handle = try await BlockingIO.run { try FileHandle(forReadingFrom: url) }
        defer { try? handle.close() }
        let chunk = egress?.chunkSize ?? 256 * 1024
        var position = offset
        let end = offset + length
        while position < end {
            let want = Int(min(Int64(chunk), end - position))
            let start = position
            let data = try await BlockingIO.run { () -> Data in
                try handle.seek(toOffset: UInt64(start))
                return try handle.read(upToCount: want) ?? Data()
            }
            guard !data.isEmpty else { break }  // the file shrank under us: the client sees a short body
            if let egress { try await egress.acquire(bytes: data.count) }
            try await writer.write(ByteBuffer(bytes: data))
            position += Int64(data.count)
            let sent = Int64(data.count)
            state.withLock { state in
                state.bytesSentTotal += sent
                state.bytesSentByUser[user, default: 0] += sent
            }
        }
    }
}
