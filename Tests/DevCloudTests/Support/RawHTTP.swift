import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An HTTP response as read off the socket.
struct HTTPResult: Sendable {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    var text: String { String(decoding: body, as: UTF8.self) }
}

struct RawHTTPError: Error, CustomStringConvertible {
    var description: String
}

/// A minimal HTTP/1.1 client over a plain loopback socket, so tests send exactly the recorded requests
/// (any method, any header). Each request uses its own connection with `Connection: close`; the blocking socket
/// work runs on its own thread, never on the Swift concurrency pool the server needs.
enum RawHTTP {
    static func send(
        port: Int, method: String, path: String, headers: [(String, String)] = [], body: [UInt8] = []
    ) async throws -> HTTPResult {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
        for (name, value) in headers where !["host", "content-length", "connection"].contains(name.lowercased()) {
            head += "\(name): \(value)\r\n"
        }
        if !body.isEmpty || ["PUT", "POST", "PROPFIND", "PROPPATCH", "LOCK"].contains(method) {
            head += "Content-Length: \(body.count)\r\n"
        }
        head += "Connection: close\r\n\r\n"
        let request = Array(head.utf8) + body
        let raw = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[UInt8], any Error>) in
            let thread = Thread {
                continuation.resume(with: Result { try exchange(port: port, request: request) })
            }
            thread.start()
        }
        return try parse(raw, isHead: method == "HEAD")
    }

    private static func exchange(port: Int, request: [UInt8]) throws -> [UInt8] {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawHTTPError(description: "socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw RawHTTPError(description: "connect() failed") }
        var offset = 0
        while offset < request.count {
            let written = request[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            // The server may answer (e.g. 507, 403) and close before reading the whole body.
            if written <= 0 { break }
            offset += written
        }
        // The response ends when the server closes (`Connection: close`); a server that stops sending without closing
        // fails the read after 60 s instead of hanging the test.
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var count = 0
        repeat {
            count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 { response.append(contentsOf: buffer[0..<count]) }
        } while count > 0
        if count < 0, errno == EAGAIN || errno == EWOULDBLOCK {
            throw RawHTTPError(
                description: "timed out after 60 s waiting for the end of the response (\(response.count) bytes)")
        }
        return response
    }

    static func parse(_ raw: [UInt8], isHead: Bool) throws -> HTTPResult {
        let separator: [UInt8] = [13, 10, 13, 10]
        // Skip interim 1xx answers (100 Continue).
        if raw.starts(with: Array("HTTP/1.1 1".utf8)), let end = raw.firstRange(of: separator) {
            return try parse(Array(raw[end.upperBound...]), isHead: isHead)
        }
        guard let end = raw.firstRange(of: separator) else {
            throw RawHTTPError(description: "no complete response head (\(raw.count) bytes)")
        }
        let headText = String(decoding: raw[..<end.lowerBound], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw RawHTTPError(description: "bad status line")
        }
        let headers: [(String, String)] = lines.compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var body = Array(raw[end.upperBound...])
        if isHead { body = [] }
        let chunked = headers.contains {
            $0.0.lowercased() == "transfer-encoding" && $0.1.lowercased().contains("chunked")
        }
        if chunked { body = try dechunk(body) }
        return HTTPResult(status: status, headers: headers, body: body)
    }

    private static func dechunk(_ data: [UInt8]) throws -> [UInt8] {
        var result: [UInt8] = []
        var index = 0
        while index < data.count {
            guard let lineEnd = data[index...].firstRange(of: [13, 10]) else { break }
            let sizeText = String(decoding: data[index..<lineEnd.lowerBound], as: UTF8.self)
            guard let size = Int(sizeText.split(separator: ";")[0], radix: 16) else {
                throw RawHTTPError(description: "bad chunk size")
            }
            if size == 0 { break }
            let start = lineEnd.upperBound
            result.append(contentsOf: data[start..<min(data.count, start + size)])
            index = start + size + 2
        }
        return result
    }
}

extension RawHTTP {
    /// Sends a request head announcing `declaredLength` body bytes, then only `body`, then closes the connection:
    /// an upload interrupted mid-body.
    static func sendInterrupted(
        port: Int, method: String, path: String, headers: [(String, String)], declaredLength: Int, body: [UInt8]
    ) async throws {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(declaredLength)\r\n\r\n"
        let bytes = Array(head.utf8) + body
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            Thread {
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_port = in_port_t(UInt16(port).bigEndian)
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                let connected = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
                guard fd >= 0, connected == 0 else {
                    if fd >= 0 { close(fd) }
                    continuation.resume(throwing: RawHTTPError(description: "connect() failed"))
                    return
                }
                var offset = 0
                while offset < bytes.count {
                    let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                    if written <= 0 { break }
                    offset += written
                }
                close(fd)
                continuation.resume()
            }.start()
        }
    }
}

extension RawHTTP {
    /// Sends a request head with `Expect: 100-continue` and waits for the interim answer before sending the body, as
    /// libcurl does. Returns the interim status line (nil if none came) and the final response.
    ///
    /// Each read waits up to 60 s: with 5 s, a loaded machine (the whole suite on 2 cores) answered neither in time
    /// and the test failed with "no complete response head (0 bytes)". A server that answers only once it has the
    /// body still fails the check: nothing comes before the body, so there is no interim line.
    static func sendExpectingContinue(
        port: Int, method: String, path: String, headers: [(String, String)], body: [UInt8]
    ) async throws -> (String?, HTTPResult) {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "Expect: 100-continue\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let headBytes = Array(head.utf8)
        let (interim, raw) = try await withCheckedThrowingContinuation {
            (continuation: CheckedContinuation<(String?, [UInt8]), any Error>) in
            Thread {
                continuation.resume(
                    with: Result {
                        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                        defer { close(fd) }
                        var address = sockaddr_in()
                        address.sin_family = sa_family_t(AF_INET)
                        address.sin_port = in_port_t(UInt16(port).bigEndian)
                        address.sin_addr.s_addr = inet_addr("127.0.0.1")
                        let connected = withUnsafePointer(to: &address) {
                            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                            }
                        }
                        guard fd >= 0, connected == 0 else { throw RawHTTPError(description: "connect() failed") }
                        var timeout = timeval(tv_sec: 60, tv_usec: 0)
                        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                        _ = headBytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                        var buffer = [UInt8](repeating: 0, count: 65536)
                        var received: [UInt8] = []
                        while received.firstRange(of: [13, 10, 13, 10]) == nil {
                            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                            if count <= 0 { break }
                            received += buffer[0..<count]
                        }
                        let interim =
                            received.isEmpty
                            ? nil : String(decoding: received, as: UTF8.self).components(separatedBy: "\r\n").first
                        var offset = 0
                        while offset < body.count {
                            let written = body[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                            if written <= 0 { break }
                            offset += written
                        }
                        var rest: [UInt8] = []
                        while true {
                            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                            if count <= 0 { break }
                            rest += buffer[0..<count]
                        }
                        return (interim, received + rest)
                    })
            }.start()
        }
        return (interim, try parse(raw, isHead: false))
    }
}
