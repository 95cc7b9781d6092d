internal import Foundation
import Synchronization

#if canImport(FoundationNetworking)
    internal import FoundationNetworking
#endif

/// HTTP to the signaling server's version-log endpoints (`/v1/log/...`), with every answer bounded: at most `limit`
/// bytes are kept (the transfer is cancelled past it) and a request takes at most `timeout` seconds in all.
struct LogHTTP: Sendable {
    /// `http://host:port` (from `ws://host:port/v1/ws`; `wss` gives `https`).
    let base: URL
    var timeout: Double = 15

    init?(signalURL: String) {
        guard var components = URLComponents(string: signalURL) else { return nil }
        switch components.scheme {
        case "ws": components.scheme = "http"
        case "wss": components.scheme = "https"
        case "http", "https": break
        default: return nil
        }
        components.path = ""
        components.query = nil
        guard let url = components.url else { return nil }
        base = url
    }

    struct Answer: Sendable {
        var status: Int
        var body: Data
        var text: String {
            String(decoding: body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }
    }

    /// Seconds waited out, at most, when the log answers 429 (its per-address rate limit), one at a time.
    var maximumRateWaits = 30

    /// Sends a request; a 429 is waited out (a second, then the request again) up to `maximumRateWaits` times.
    func request(
        _ method: String, _ pathAndQuery: String, body: Data? = nil, limit: Int = 64 << 10
    ) async throws
        -> Answer
    {
        var answer = try await once(method, pathAndQuery, body: body, limit: limit)
        var waits = 0
        while answer.status == 429, waits < maximumRateWaits {
            waits += 1
            try await Task.sleep(for: .seconds(1))
            answer = try await once(method, pathAndQuery, body: body, limit: limit)
        }
        return answer
    }

    private func once(_ method: String, _ pathAndQuery: String, body: Data?, limit: Int) async throws -> Answer {
        guard let url = URL(string: base.absoluteString + pathAndQuery) else { throw LogHTTPError("bad URL") }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.httpBody = body
        request.timeoutInterval = timeout
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.timeoutIntervalForResource = timeout
        let collector = BoundedCollector(limit: limit)
        let session = URLSession(configuration: configuration, delegate: collector, delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                collector.start(continuation)
                session.dataTask(with: request).resume()
            }
        } onCancel: {
            session.invalidateAndCancel()
        }
    }
}

struct LogHTTPError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Collects one response body up to a limit; cancels the task past it.
private final class BoundedCollector: NSObject, URLSessionDataDelegate, Sendable {
    private struct State {
        var continuation: CheckedContinuation<LogHTTP.Answer, any Error>?
        var status = 0
        var body = Data()
        var overflow = false
    }
    private let state = Mutex(State())
    let limit: Int

    init(limit: Int) { self.limit = limit }

    func start(_ continuation: CheckedContinuation<LogHTTP.Answer, any Error>) {
        state.withLock { $0.continuation = continuation }
    }

    func urlSession(
        _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void
    ) {
        state.withLock { $0.status = (response as? HTTPURLResponse)?.statusCode ?? 0 }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        let over = state.withLock { state in
            if state.body.count + data.count > limit {
                state.overflow = true
                return true
            }
            state.body.append(data)
            return false
        }
        if over { dataTask.cancel() }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        let (continuation, result):
            (CheckedContinuation<LogHTTP.Answer, any Error>?, Result<LogHTTP.Answer, any Error>) =
                state.withLock { state in
                    defer { state.continuation = nil }
                    if state.overflow {
                        return (state.continuation, .failure(LogHTTPError("answer over \(limit) bytes")))
                    }
                    if let error {
                        return (state.continuation, .failure(LogHTTPError("\(error.localizedDescription)")))
                    }
                    return (state.continuation, .success(LogHTTP.Answer(status: state.status, body: state.body)))
                }
        continuation?.resume(with: result)
    }
}
