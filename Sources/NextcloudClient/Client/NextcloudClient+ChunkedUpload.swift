public import Foundation
import HTTPTypes

extension NextcloudClient {
    /// Files up to this size go up with one PUT; larger ones with chunked upload v2.
    public static let defaultSinglePutLimit: Int64 = 10 << 20
    /// The chunk size of chunked upload v2 (Nextcloud accepts 5 MiB to 5 GiB per chunk, last one smaller).
    public static let defaultChunkSize: Int64 = 10 << 20

    /// Uploads the local file at `localPath` to `path`: one PUT when it is small, otherwise
    /// chunked upload v2, resumable: running it again for the same file, destination and
    /// modification time continues where the last attempt stopped (chunks already on the
    /// server with the right size are not sent again).
    public func uploadFile(
        at localPath: String, to path: String, modified: Date? = nil, checksum: String? = nil,
        chunkSize: Int64 = NextcloudClient.defaultChunkSize,
        singlePutLimit: Int64 = NextcloudClient.defaultSinglePutLimit
    ) async throws -> UploadResult {
        let size = try Self.fileSize(localPath)
        if size <= singlePutLimit {
            return try await put(
                .file(path: localPath, offset: 0, length: size), to: path, modified: modified, checksum: checksum,
                ifMatch: nil)
        }
        return try await chunkedUpload(
            at: localPath, size: size, to: path, modified: modified, checksum: checksum, chunkSize: chunkSize)
    }

    /// Chunked upload v2 (MKCOL `/remote.php/dav/uploads/USER/ID` with `Destination`; PUT
    /// `ID/1`, `ID/2`, … with `Destination` and `OC-Total-Length`; MOVE `ID/.file` to the
    /// destination with `OC-Total-Length`, `X-OC-Mtime`, `OC-Checksum`).
    ///
    /// `uploadID` defaults to a name derived from destination, size, mtime and chunk size,
    /// so a repeated call resumes the same upload.
    public func chunkedUpload(
        at localPath: String, size: Int64, to path: String, modified: Date? = nil, checksum: String? = nil,
        chunkSize: Int64 = NextcloudClient.defaultChunkSize, uploadID: String? = nil
    ) async throws -> UploadResult {
        precondition(chunkSize > 0, "chunk size must be positive")
        let destination = PathEncoding.normalize(path)
        let destinationURL = try filesURL(destination).absoluteString
        let id =
            uploadID ?? Self.uploadID(destination: destination, size: size, modified: modified, chunkSize: chunkSize)
        let folderPath =
            "/remote.php/dav/uploads/" + PathEncoding.encodeSegment(credentials.userID) + "/"
            + PathEncoding.encodeSegment(id)
        let folderURL = try url(folderPath)
        let common: HTTPFields = [.destination: destinationURL, .ocTotalLength: String(size)]
        let chunkCount = Int((size + chunkSize - 1) / chunkSize)

        let present = try await uploadedChunks(
            folderURL: folderURL,
            folderHref: credentials.server.serverBasePath
                + "/remote.php/dav/uploads/" + credentials.userID + "/" + id, displayPath: destination)
        if present == nil {
            var mkcol = HTTPRequest(method: "MKCOL", url: folderURL, displayPath: destination)
            mkcol.headers = [.destination: destinationURL]
            _ = try await send(mkcol)
        }
        var skipped = 0
        for index in 1...max(chunkCount, 1) {
            let offset = Int64(index - 1) * chunkSize
            let length = min(chunkSize, size - offset)
            if present?[index] == length {
                skipped += 1
                continue
            }
            try Task.checkCancellation()
            var put = HTTPRequest(
                method: "PUT", url: try url(folderPath + "/" + String(index)), displayPath: destination,
                isIdempotent: true)
            put.headers = common
            put.headers[.contentType] = "application/octet-stream"
            put.body = .file(path: localPath, offset: offset, length: max(length, 0))
            _ = try await send(put)
            logger.debug(
                "chunk uploaded",
                metadata: ["nc.path": "\(destination)", "chunk.index": "\(index)", "chunk.count": "\(chunkCount)"])
        }
        if skipped > 0 {
            logger.info(
                "chunked upload resumed", metadata: ["nc.path": "\(destination)", "chunks.skipped": "\(skipped)"])
        }
        var move = HTTPRequest(method: "MOVE", url: try url(folderPath + "/.file"), displayPath: destination)
        move.headers = common
        if let modified { move.headers[.ocMtime] = String(Int64(modified.timeIntervalSince1970)) }
        if let checksum { move.headers[.ocChecksum] = checksum }
        let response = try await send(move)
        return Self.uploadResult(response.head)
    }

    /// The chunks already in the upload folder, number → size; nil when the folder does not exist.
    private func uploadedChunks(folderURL: URL, folderHref: String, displayPath: String) async throws -> [Int: Int64]? {
        var request = HTTPRequest(method: "PROPFIND", url: folderURL, displayPath: displayPath)
        request.headers = [.depth: "1", .contentType: "application/xml; charset=utf-8"]
        request.body = .data(Multistatus.propfindBody)
        let response: BufferedResponse
        do {
            response = try await send(request)
        } catch let error as NextcloudError where error.kind == .notFoundOrNoAccess {
            return nil
        }
        let items = try Multistatus.parse(response.body, rootHref: folderHref, path: displayPath)
        var chunks: [Int: Int64] = [:]
        for item in items where !item.isFolder {
            if let number = Int(item.name), let size = item.size { chunks[number] = size }
        }
        return chunks
    }

    /// A stable upload id: FNV-1a 64 of destination, size, mtime and chunk size (not a secret,
    /// only a name that a second attempt finds again).
    static func uploadID(destination: String, size: Int64, modified: Date?, chunkSize: Int64) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        let key = "\(destination)\n\(size)\n\(modified.map { Int64($0.timeIntervalSince1970) } ?? -1)\n\(chunkSize)"
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return "harp-" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    static func fileSize(_ localPath: String) throws -> Int64 {
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: localPath)
            guard let size = (attributes[.size] as? NSNumber)?.int64Value else {
                throw NextcloudError(.localIO, path: localPath, detail: "cannot read the file size")
            }
            return size
        } catch let error as NextcloudError {
            throw error
        } catch {
            throw NextcloudError(.localIO, path: localPath, detail: "cannot read the file")
        }
    }
}
