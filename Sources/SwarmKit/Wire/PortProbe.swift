internal import Glibc
internal import NIOCore

/// Why a peer listener could not be bound.
public enum PeerListenerError: Error, Sendable, CustomStringConvertible {
    /// Another socket already listens on the fixed port: most likely a second harp process given the same
    /// `--listen HOST:PORT`. The listener sets `SO_REUSEPORT` (hole punching dials from the listening port), with
    /// which the kernel would let both processes bind the port and split its connections between them.
    case portInUse(host: String, port: Int)

    public var description: String {
        switch self {
        case .portInUse(let host, let port):
            "the peer port \(port) on \(host) is already in use by another process (another harp with the same "
                + "--listen?): choose another port, or 0 to let the system pick one"
        }
    }
}

/// The check made before a listener with `SO_REUSEPORT` binds a fixed port (docs/nat.md, "One port per process"): a
/// probe socket with `SO_REUSEADDR` but without `SO_REUSEPORT` binds the same address. The kernel refuses it while
/// any other socket listens there (even one with `SO_REUSEPORT`), but not because of connections in `TIME_WAIT`
/// (earlier punches from that port) thanks to `SO_REUSEADDR`. The probe is closed before the listener binds: a second
/// process whose probe runs between the two (microseconds) is not caught.
enum PortProbe {
    /// Throws ``PeerListenerError/portInUse(host:port:)`` when another socket listens on `host:port`. Any other
    /// failure of the probe (an address that does not resolve, a family the host lacks) is left to the real bind,
    /// which reports it as before.
    static func checkFree(host: String, port: Int) throws {
        guard port > 0, let address = try? SocketAddress.makeAddressResolvingHost(host, port: port) else { return }
        let family: Int32
        switch address {
        case .v4: family = AF_INET
        case .v6: family = AF_INET6
        case .unixDomainSocket: return
        }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var one: Int32 = 1
        guard setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size)) == 0 else { return }
        let result = address.withSockAddr { pointer, size in
            Glibc.bind(fd, pointer, socklen_t(size))
        }
        if result != 0, errno == EADDRINUSE {
            throw PeerListenerError.portInUse(host: host, port: port)
        }
    }
}
