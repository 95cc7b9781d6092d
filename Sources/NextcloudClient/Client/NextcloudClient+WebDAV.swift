public import Foundation

extension NextcloudClient {
    /// PROPFIND depth for `propfind`.
    public enum Depth: String, Sendable {
        case zero = "0"
        case one = "1"
    }

    /// PROPFIND of `path` (relative to the user's root) with harp's property set. With `.one`
    /// the first item is the target itself, then its children.
    /// Responses whose href lies outside the user's root or names a path harp refuses (`HrefRefusal`) are left out.
    public func propfind(_ path: String, depth: Depth) async throws -> [DAVItem] {
        try await propfindEntries(path, depth: depth).compactMap { entry in
            if case .item(let item) = entry { item } else { nil }
        }
    }

    /// PROPFIND of `path` with every response, the refused hrefs included.
    func propfindEntries(_ path: String, depth: Depth) async throws -> [Multistatus.Entry] {
        let normalized = PathEncoding.normalize(path)
        var request = HTTPRequest(method: "PROPFIND", url: try filesURL(normalized), displayPath: normalized)
        request.headers = [.depth: depth.rawValue, .contentType: "application/xml; charset=utf-8"]
        request.body = .data(Multistatus.propfindBody)
        request.acceptCompressed = true
        let response = try await send(request)
        guard response.status == 207 else {
            throw NextcloudError(.malformedResponse, status: response.status, path: normalized, detail: "expected 207")
        }
        return try Multistatus.parseEntries(response.body, rootHref: filesRootHref, path: normalized)
    }

    /// The item at `path` (PROPFIND Depth 0).
    public func item(at path: String) async throws -> DAVItem {
        let normalized = PathEncoding.normalize(path)
        guard let item = try await propfind(normalized, depth: .zero).first(where: { $0.path == normalized }) else {
            throw NextcloudError(.malformedResponse, path: normalized, detail: "the answer does not describe the path")
        }
        return item
    }

    /// The folder at `path` and its direct children (PROPFIND Depth 1). Entries harp refuses (an href outside the
    /// folder, a name such as `..`, a duplicate: see `listEntries`) are left out.
    public func list(_ path: String) async throws -> (folder: DAVItem, children: [DAVItem]) {
        let listing = try await listEntries(path)
        return (listing.folder, listing.children)
    }

    /// Every item below `path`, depth first, streamed as each folder is listed. Uses one
    /// Depth 1 PROPFIND per folder (never Depth infinity, which is slow on large trees).
    /// Ends with the first error, and with an error at the first entry harp refuses (see `walkEntries`).
    public func walk(_ path: String, limits: WalkLimits = WalkLimits()) -> AsyncThrowingStream<DAVItem, any Error> {
        let state = WalkState(client: self, root: PathEncoding.normalize(path), limits: limits)
        return AsyncThrowingStream(
            unfolding: {
                switch try await state.next() {
                case .item(let item): return item
                case .refused(let refused): throw refused.error
                case nil: return nil
                }
            })
    }

    /// MKCOL: creates the folder at `path`. Throws `.conflict` when it exists (405) or its
    /// parent is missing (409).
    public func makeFolder(_ path: String) async throws {
        let normalized = PathEncoding.normalize(path)
        _ = try await send(
            HTTPRequest(method: "MKCOL", url: try filesURL(normalized, folder: true), displayPath: normalized))
    }

    /// DELETE of a file or (non-empty) folder.
    public func delete(_ path: String) async throws {
        let normalized = PathEncoding.normalize(path)
        _ = try await send(HTTPRequest(method: "DELETE", url: try filesURL(normalized), displayPath: normalized))
    }

    /// MOVE `path` to `destination` (both relative to the user's root).
    public func move(_ path: String, to destination: String, overwrite: Bool = false) async throws {
        let from = PathEncoding.normalize(path)
        var request = HTTPRequest(method: "MOVE", url: try filesURL(from), displayPath: from)
        request.headers = [
            .destination: try filesURL(destination).absoluteString, .overwrite: overwrite ? "T" : "F",
        ]
        _ = try await send(request)
    }

    /// The result of a write: the node's fileid and new etag from the response headers.
    public struct UploadResult: Sendable, Hashable {
        /// Decimal fileid, from `OC-FileId` (`00000098oc…` → 98).
        public var fileID: Int64?
        /// The new etag, quotes included.
        public var etag: String?
        /// True when the server created the file (201), false when it replaced one (204).
        public var created: Bool
    }

    /// PUT of a small file held in memory. `mtime` goes out as `X-OC-Mtime`; `checksum`
    /// (e.g. `SHA1:…`) as `OC-Checksum`, which Nextcloud stores without verifying;
    /// `ifMatch` makes the write fail with `.preconditionFailed` if the file changed.
    public func upload(
        _ data: Data, to path: String, modified: Date? = nil, checksum: String? = nil, ifMatch: String? = nil
    ) async throws -> UploadResult {
        try await put(.data(data), to: path, modified: modified, checksum: checksum, ifMatch: ifMatch)
    }

    func put(
        _ body: RequestBody, to path: String, modified: Date?, checksum: String?, ifMatch: String?
    ) async throws -> UploadResult {
        let normalized = PathEncoding.normalize(path)
        var request = HTTPRequest(
            method: "PUT", url: try filesURL(normalized), displayPath: normalized, isIdempotent: true)
        request.body = body
        request.headers = [.contentType: "application/octet-stream"]
        if let modified { request.headers[.ocMtime] = String(Int64(modified.timeIntervalSince1970)) }
        if let checksum { request.headers[.ocChecksum] = checksum }
        if let ifMatch { request.headers[.ifMatch] = ifMatch }
        let response = try await send(request)
        return Self.uploadResult(response.head)
    }

    static func uploadResult(_ head: ResponseHead) -> UploadResult {
        let fileID = head.headers[.ocFileId].flatMap { Int64($0.prefix(while: { $0.isNumber })) }
        return UploadResult(
            fileID: fileID, etag: head.headers[.ocETag] ?? head.headers[.eTag], created: head.status == 201)
    }
}
