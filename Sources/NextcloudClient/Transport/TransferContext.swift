internal import Foundation
import HTTPTypes
internal import Synchronization

#if canImport(Glibc)
    internal import Glibc
#endif

/// Set from any thread when the Swift task that waits for a transfer is cancelled; read by
/// curl's progress callback on the worker thread, which then aborts the transfer.
final class CancellationFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func cancel() { value.store(true, ordering: .relaxed) }
    var isCancelled: Bool { value.load(ordering: .relaxed) }
}

/// The state of one transfer while curl runs it. It lives on the worker thread only: curl's
/// callbacks reach it through the user-data pointer and nothing else holds it.
final class TransferContext {
    /// What happens to the response body, decided once the final headers are complete.
    enum BodyRoute {
        case undecided
        case sink
        case errorBuffer
        case refuse(NextcloudError)
    }

    let request: HTTPRequest
    let sink: any ByteSink
    let cancellation: CancellationFlag

    private(set) var status = 0
    private(set) var headers = HTTPFields()
    private(set) var route = BodyRoute.undecided
    private(set) var errorBody = Data()
    private(set) var sinkError: (any Error)?
    private(set) var bytesToSink: Int64 = 0
    private(set) var uploadError: NextcloudError?

    static let errorBodyLimit = 64 * 1024

    private var uploadOffset: Int64 = 0
    private var uploadDescriptor: Int32 = -1

    init(request: HTTPRequest, sink: any ByteSink, cancellation: CancellationFlag) {
        self.request = request
        self.sink = sink
        self.cancellation = cancellation
    }

    deinit {
        if uploadDescriptor >= 0 { close(uploadDescriptor) }
    }

    /// Opens the upload file, if the body is one.
    func prepareUpload() throws(NextcloudError) {
        guard case .file(let path, _, _) = request.body else { return }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw NextcloudError(.localIO, path: path, detail: String(cString: strerror(errno)))
        }
        uploadDescriptor = fd
    }

    // MARK: Headers

    /// One header line from curl, status lines and the final empty line included.
    func receiveHeaderLine(_ line: Substring) {
        if line.hasPrefix("HTTP/") {
            // A new response starts (after 100 Continue, say): forget the interim one.
            let parts = line.split(separator: " ", maxSplits: 2)
            status = parts.count >= 2 ? Int(parts[1]) ?? 0 : 0
            headers = HTTPFields()
            route = .undecided
            return
        }
        if line.trimmingASCIIWhitespace().isEmpty {
            if status >= 200 { decideRoute() }
            return
        }
        headers.addRawLine(line)
    }

    /// Decides where the body goes before the first byte of it arrives.
    private func decideRoute() {
        guard (200..<300).contains(status) else {
            route = .errorBuffer
            return
        }
        guard let wanted = request.range else {
            route = .sink
            return
        }
        // A range is trusted only from a 206 whose Content-Range starts where we asked and
        // does not go past what we asked (it may be clipped at the end of the file).
        guard status == 206 else {
            route = .refuse(
                NextcloudError(
                    .malformedResponse, status: status, path: request.displayPath,
                    detail: "asked for bytes \(wanted) but the server sent the whole file; nothing was written"))
            return
        }
        guard let header = headers[.contentRange], let parsed = ContentRange(headerValue: header),
            case .satisfied(let got, let total) = parsed,
            got.first == wanted.first, got.last <= wanted.last,
            got.last == wanted.last || total.map({ got.last == $0 - 1 }) == true
        else {
            route = .refuse(
                NextcloudError(
                    .malformedResponse, status: status, path: request.displayPath,
                    detail: "206 with a missing or different Content-Range for bytes \(wanted)"))
            return
        }
        route = .sink
    }

    // MARK: Body

    /// Body bytes from curl. Returns false to make curl abort the transfer.
    func receiveBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if case .undecided = route { decideRoute() }
        switch route {
        case .undecided, .refuse:
            return false
        case .errorBuffer:
            let room = Self.errorBodyLimit - errorBody.count
            if room > 0 { errorBody.append(contentsOf: bytes.prefix(room)) }
            return true
        case .sink:
            do {
                try sink.write(bytes)
                bytesToSink += Int64(bytes.count)
                return true
            } catch {
                sinkError = error
                return false
            }
        }
    }

    /// The refusal decided from the headers, if any.
    var refusal: NextcloudError? {
        if case .refuse(let error) = route { return error }
        return nil
    }

    // MARK: Upload

    /// Fills `buffer` with the next request-body bytes; returns the count, 0 at the end, or nil on error.
    func provideUpload(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        let remaining = request.body.length - uploadOffset
        let count = Int(min(Int64(buffer.count), remaining))
        guard count > 0, let base = buffer.baseAddress else { return 0 }
        switch request.body {
        case .none:
            return 0
        case .data(let data):
            let start = data.startIndex + Int(uploadOffset)
            data.copyBytes(to: base.assumingMemoryBound(to: UInt8.self), from: start..<start + count)
            uploadOffset += Int64(count)
            return count
        case .file(let path, let offset, _):
            let n = pread(uploadDescriptor, base, count, off_t(offset + uploadOffset))
            guard n > 0 else {
                let reason = n == 0 ? "the file is shorter than expected" : String(cString: strerror(errno))
                uploadError = NextcloudError(.localIO, path: path, detail: reason)
                return nil
            }
            uploadOffset += Int64(n)
            return n
        }
    }
}
