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
