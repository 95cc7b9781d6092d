internal import Foundation
internal import NIOCore
internal import SignalingClient
internal import SignalingProtocol
internal import SwarmKit

/// The local source address the kernel would use to reach a host.
enum LocalRoute {
    static func sourceAddress(toward host: String) -> String? {
        guard
            let target = (try? SocketAddress(ipAddress: host, port: 9))
                ?? (try? SocketAddress.makeAddressResolvingHost(host, port: 9))
        else { return nil }
        let fd = socket(Int32(target.protocol.rawValue), Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let connected = target.withSockAddr { address, length in connect(fd, address, socklen_t(length)) }
        guard connected == 0 else { return nil }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { return nil }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let family = Int32(storage.ss_family)
        let converted: UnsafePointer<CChar>? = withUnsafePointer(to: &storage) { pointer in
            if family == AF_INET {
                return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                    var address = v4.pointee.sin_addr
                    return inet_ntop(AF_INET, &address, &text, socklen_t(text.count))
                }
            }
            return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                var address = v6.pointee.sin6_addr
                return inet_ntop(AF_INET6, &address, &text, socklen_t(text.count))
            }
        }
        guard converted != nil else { return nil }
        return String(decoding: text.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension SwarmKeys {
    /// S as the signaling protocol names it.
    var signalID: SwarmID {
        guard let id = PublicKey32(bytes: swarmID) else { preconditionFailure("a swarm id is 32 bytes") }
        return id
    }
}

extension LocalRoute {
    /// Whether `host` (an IP address) is on the subnet of one of this machine's interfaces, by its netmask: then a
    /// peer's local candidate is the way to reach it. `false` for anything that is not an IP address.
    static func isOnLink(_ host: String) -> Bool {
        guard let target = try? SocketAddress(ipAddress: host, port: 0), let bytes = addressBytes(target) else {
            return false
        }
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return false }
        defer { freeifaddrs(list) }
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr, let mask = entry.pointee.ifa_netmask,
                let own = sockaddrBytes(address), let netmask = sockaddrBytes(mask), own.count == bytes.count,
                netmask.count == bytes.count
            else { continue }
            if zip(zip(own, bytes), netmask).allSatisfy({ ($0.0 & $1) == ($0.1 & $1) }) { return true }
        }
        return false
    }

    private static func addressBytes(_ address: SocketAddress) -> [UInt8]? {
        address.withSockAddr { pointer, _ in sockaddrBytes(pointer) }
    }

    /// The IP bytes of an IPv4 or IPv6 socket address (4 or 16), `nil` for other families.
    private static func sockaddrBytes(_ pointer: UnsafePointer<sockaddr>) -> [UInt8]? {
        switch Int32(pointer.pointee.sa_family) {
        case AF_INET:
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                var address = v4.pointee.sin_addr
                return withUnsafeBytes(of: &address) { Array($0) }
            }
        case AF_INET6:
            return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                var address = v6.pointee.sin6_addr
                return withUnsafeBytes(of: &address) { Array($0) }
            }
        default:
            return nil
        }
    }
}
