internal import Foundation
internal import Logging
internal import Synchronization

/// User name and password for HTTP Basic auth. `description` never shows the password.
struct BasicCredentials: Sendable, CustomStringConvertible {
    let user: String
    let password: String
    var description: String { "BasicCredentials(user: \(user), password: <redacted>)" }
}

/// The async face of libcurl: runs each request on a worker thread and resumes the caller
/// when it ends; cancelling the calling task aborts the transfer.
final class CurlTransport: Sendable {
    let options: TransportOptions
    private let workers: TransferWorkers
    private let logger: Logger

    init(options: TransportOptions, logger: Logger) {
        self.options = options
        self.workers = TransferWorkers(maximumThreads: options.maximumConcurrentTransfers)
        self.logger = logger
    }

    deinit {
        workers.shutDown()
    }

    /// Performs `request` once, writing an accepted body into `sink`.
    func performOnce(
        _ request: HTTPRequest, credentials: BasicCredentials?, sink: any ByteSink
    ) async throws -> CurlTransfer.Outcome {
        let cancellation = CancellationFlag()
        let options = self.options
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation {
                (continuation: CheckedContinuation<CurlTransfer.Outcome, any Error>) in
                workers.submit { handle in
                    if cancellation.isCancelled {
                        continuation.resume(throwing: CancellationError())
                        return
                    }
                    continuation.resume(
                        with: Result {
                            try CurlTransfer.run(
                                handle: handle, request: request, credentials: credentials, sink: sink,
                                cancellation: cancellation, options: options)
                        })
                }
            }
        } onCancel: {
            cancellation.cancel()
        }
    }

    /// Performs `request`, retrying idempotent ones after a 5xx or a network failure as long as
    /// no body byte reached the sink. Returns the head and (for errors) the error body.
    func perform(
        _ request: HTTPRequest, credentials: BasicCredentials?, sink: any ByteSink
    ) async throws -> CurlTransfer.Outcome {
        let counting = CountingSink(sink)
        var attempt = 1
        while true {
            try Task.checkCancellation()
            let failure: String
            do {
                let outcome = try await performOnce(request, credentials: credentials, sink: counting)
                let status = outcome.head.status
                guard (500...599).contains(status), request.isIdempotent,
                    attempt < options.retry.maximumAttempts
                else { return outcome }
                failure = "status \(status)"
            } catch let error as NextcloudError where error.kind == .network {
                guard request.isIdempotent, attempt < options.retry.maximumAttempts, counting.count == 0 else {
                    throw error
                }
                failure = "network"
            }
            let delay = options.retry.delay(beforeRetry: attempt)
            logger.info(
                "retrying request",
                metadata: [
                    "http.method": "\(request.method)", "nc.path": "\(request.displayPath)",
                    "attempt": "\(attempt)", "failure": "\(failure)", "delay": "\(delay)",
                ])
            try await Task.sleep(for: delay)
            attempt += 1
        }
    }
}

/// Passes bytes on and counts them, so a retry can tell whether the sink was touched.
private final class CountingSink: ByteSink {
    private let inner: any ByteSink
    private let written = Atomic<Int64>(0)

    init(_ inner: any ByteSink) { self.inner = inner }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try inner.write(bytes)
        written.add(Int64(bytes.count), ordering: .relaxed)
    }

    var count: Int64 { written.load(ordering: .relaxed) }
}
