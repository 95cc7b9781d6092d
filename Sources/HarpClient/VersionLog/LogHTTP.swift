internal import Foundation
import HarpHTTP

/// HTTP to the signaling server's version-log endpoints (`/v1/log/...`), with every answer bounded: at most `limit`
/// bytes of body and 16 KiB of headers are read (the connection is closed past either, `BoundedHTTPClient`) and a
/// request takes at most `timeout` seconds in all. `https` trusts the system's roots and checks the host name.
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
        let client = BoundedHTTPClient(
            limits: .init(maximumBody: limit, deadline: .milliseconds(Int64(max(0, timeout) * 1000))))
        do {
            let answer = try await client.send(method, base.absoluteString + pathAndQuery, body: body.map { Array($0) })
            return Answer(status: answer.status, body: Data(answer.body))
        } catch let error as BoundedHTTPError {
            throw LogHTTPError(error.description)
        }
    }
}

struct LogHTTPError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
