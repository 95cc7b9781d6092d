import Foundation
import Glibc

/// Plain blocking TCP on loopback from a chosen source address (127.0.0.0/8 is all loopback, so 127.0.0.2 and up
/// are other "clients" to the server). Used where the source address matters: the attacker's connections and the
/// legitimate client's probes come from different addresses, as they would on a real network.
enum RawSocket {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// A connected socket from `source` to 127.0.0.1:`port`, with `timeout` on every send and receive. With
    /// `blocking: false` the connect is left to finish in the background (for holding many idle connections).
    static func connect(port: Int, from source: String, timeout: Double = 5, blocking: Bool = true) throws -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        // Lets the kernel pick the source port at connect time, per destination: many more than 28,000 sockets.
        setsockopt(
            descriptor, Int32(IPPROTO_IP), 24 /* IP_BIND_ADDRESS_NO_PORT */, &one, socklen_t(MemoryLayout<Int32>.size))
        var time = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, source, &local.sin_addr)
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr)
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            close(descriptor)
            throw Failure(description: "bind \(source): \(String(cString: strerror(errno)))")
        }
        if !blocking { _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK) }
        let connected = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 || (!blocking && errno == EINPROGRESS) else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw Failure(description: "connect from \(source): \(reason)")
        }
        return descriptor
    }

    static func send(_ descriptor: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if sent < 0, errno == EINTR { continue }
            guard sent > 0 else { throw Failure(description: "send: \(String(cString: strerror(errno)))") }
            offset += sent
        }
    }

    /// Up to `count` bytes; empty at the end of the stream.
    static func receive(_ descriptor: Int32, upTo count: Int = 65536) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        while true {
            let received = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, count, 0) }
            if received < 0, errno == EINTR { continue }
            guard received >= 0 else { throw Failure(description: "receive: \(String(cString: strerror(errno)))") }
            return Array(buffer.prefix(received))
        }
    }

    /// `GET path` from `source`: the seconds until the whole answer arrived, and whether it was a 200.
    static func get(_ path: String, port: Int, from source: String) throws -> (seconds: Double, ok: Bool) {
        let start = ContinuousClock.now
        let descriptor = try connect(port: port, from: source)
        defer { close(descriptor) }
        try send(descriptor, Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8))
        var answer: [UInt8] = []
        while true {
            let chunk = try receive(descriptor)
            if chunk.isEmpty { break }
            answer += chunk
            guard answer.count < 1 << 20 else { break }
        }
        let ok = String(decoding: answer.prefix(12), as: UTF8.self).hasPrefix("HTTP/1.1 200")
        return ((ContinuousClock.now - start).secondsValue, ok)
    }
}

extension Duration {
    var secondsValue: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
