internal import Foundation
internal import NIOCore

/// The request-and-answer exchange NAT-PMP and PCP share with the default gateway (docs/nat.md): one UDP socket
/// connected to the gateway's port, so that the kernel delivers only the gateway's datagrams; the request sent per
/// ``retryDelays``; at most ``maxDatagrams`` read per try into a buffer of the protocol's largest message, the first
/// that `parse` takes being the answer. Blocking: run off the cooperative pool.
enum GatewayUDP {
    /// How an exchange ended.
    enum Outcome<Answer> {
        case answer(Answer)
        /// The gateway said nothing listens on the port (ICMP port unreachable, seen as `ECONNREFUSED`).
        case unreachable
        /// No valid answer within the tries, or no socket.
        case none
    }

    /// RFC 6886 §3.1: the first retry after 250 ms, doubling; three tries here (RFC 6887 starts at 3 s and sets no
    /// limit: a mapping that takes longer is not worth the wait, and the join goes out without it).
    static let retryDelays: [Int32] = [250, 500, 1000]
    /// Datagrams read per try at most (a flood from the gateway's address ends the try).
    static let maxDatagrams = 16

    /// Exchanges with `gateway:port`. `request` makes the request on the connected socket (PCP names the socket's
    /// local address in it) or nil to give up; `parse` reads each datagram, at most `maxMessage` bytes (a longer one is
    /// truncated to one byte more, which `parse` refuses by its length).
    static func exchange<Answer>(
        gateway: String, port: Int, maxMessage: Int, request: (Int32) -> [UInt8]?, parse: ([UInt8]) -> Answer?
    ) -> Outcome<Answer> {
        guard let address = try? SocketAddress(ipAddress: gateway, port: port), case .v4 = address else { return .none }
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return .none }
        defer { close(fd) }
        let connected = address.withSockAddr { pointer, length in connect(fd, pointer, socklen_t(length)) }
        guard connected == 0, let request = request(fd) else { return .none }
        var buffer = [UInt8](repeating: 0, count: maxMessage + 1)
        for delay in retryDelays {
            let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            guard sent == request.count else { return errno == ECONNREFUSED ? .unreachable : .none }
            let deadline = ContinuousClock.now + .milliseconds(Int(delay))
            var datagrams = 0
            while datagrams < maxDatagrams {
                let left = deadline - ContinuousClock.now
                guard left > .zero else { break }
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, Int32(max(1, left / .milliseconds(1)))) > 0 else { break }
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count < 0, errno == ECONNREFUSED { return .unreachable }
                datagrams += 1
                guard count > 0 else { continue }
                if let answer = parse(Array(buffer.prefix(count))) { return .answer(answer) }
            }
        }
        return .none
    }

    // MARK: Big-endian fields

    static func bigEndian(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }
    static func uint16(_ bytes: [UInt8], at offset: Int) -> UInt16 {
        UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }
    static func uint32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }
}
