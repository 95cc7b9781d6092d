internal import Foundation

#if canImport(Glibc)
    internal import Glibc
#elseif canImport(Darwin)
    internal import Darwin
#endif

/// Spray punching (docs/nat.md, "Spray punching"): a TCP hole punch with a symmetric NAT on one side, which gives
/// every flow a fresh external port nobody can announce. The side behind it opens many connections to the other
/// side's reflexive candidate (``open(to:port:count:lifetime:)``): its NAT maps each to a random port, and the other
/// side's NAT drops their SYNs. The other side, whose NAT maps its listening port to the same external port for every
/// destination (the reflexive candidate), dials random ports of the first side's public address from its listening
/// port (``probe(_:localPort:ports:duration:)``); a probe that lands on one of those mappings reaches a socket still
/// connecting to exactly that address, and the two meet in a TCP simultaneous open. With 256 flows open among the
/// 64,512 ports a NAT draws from, each probe hits with a chance of 1 in 252: 1,024 probes find one 98 times in 100,
/// 2,048 probes 9,997 times in 10,000 (the birthday bound; Tailscale punches UDP through such NATs the same way).
///
/// Every socket here is a plain non-blocking one watched with `poll` on a thread of its own (never the concurrency
/// pool's), and every one but the winner is closed before these return. Socket and descriptor use is bounded: at most
/// `count` open flows, at most ``probesPerWave`` probes started per ``waveInterval`` and each kept for
/// ``probeLifetime``, ``maxProbes`` in all. Running out of descriptors stops opening more; it never fails the rest.
public enum SprayPunch {
    /// Flows the side behind the symmetric NAT opens, and for how long they wait for a probe.
    public static let openCount = 256
    public static let openLifetime = Duration.seconds(6)
    /// Probes the other side sends at most, in waves, and how long it keeps at it.
    public static let maxProbes = 2048
    public static let probeDuration = Duration.seconds(5)
    static let probesPerWave = 64
    static let waveInterval = Duration.milliseconds(50)
    /// A probe that hit is answered within one round trip between the two NATs: longer than most such round trips
    /// (at most 512 probes are open at once).
    static let probeLifetime = Duration.milliseconds(400)

    /// Opens `count` connections to `address:port` (IPv4) from ephemeral ports; the descriptor of the first that
    /// connects, or nil when none did within `lifetime`.
    public static func open(
        to address: [UInt8], port: UInt16, count: Int = openCount, lifetime: Duration = openLifetime
    ) async -> CInt? {
        guard address.count == 4 else { return nil }
        return await onOwnThread {
            var race = Race()
            start: for _ in 0..<count {
                switch connecting(to: address, port: port, from: nil) {
                case .socket(let fd): race.add(fd)
                case .skipped: continue
                case .exhausted: break start
                }
            }
            race.startedAll = true
            return race.run(until: .now + lifetime, expireAfter: nil) { _ in }
        }
    }

    /// Dials `address` (IPv4) at `ports` (by default ``maxProbes`` random ports of 1024-65535) from `localPort`,
    /// shared with the listener through `SO_REUSEADDR` and `SO_REUSEPORT`, in waves; the descriptor of the first that
    /// connects, or nil when none did within `duration`.
    public static func probe(
        _ address: [UInt8], localPort: UInt16, ports: [UInt16]? = nil, duration: Duration = probeDuration
    ) async -> CInt? {
        guard address.count == 4 else { return nil }
        let ports = ports ?? randomPorts(maxProbes)
        return await onOwnThread {
            var race = Race()
            var next = 0
            var nextWave = ContinuousClock.now
            return race.run(until: .now + duration, expireAfter: probeLifetime) { race in
                if next >= ports.count { race.startedAll = true }
                guard next < ports.count, ContinuousClock.now >= nextWave else { return }
                nextWave = .now + waveInterval
                for port in ports[next..<min(next + probesPerWave, ports.count)] {
                    next += 1
                    switch connecting(to: address, port: port, from: localPort) {
                    case .socket(let fd): race.add(fd)
                    case .skipped: continue
                    case .exhausted:
                        next = ports.count
                        return
                    }
                }
            }
        }
    }

    /// `count` distinct ports of 1024-65535, in random order.
    static func randomPorts(_ count: Int) -> [UInt16] {
        var chosen = Set<UInt16>()
        var ports: [UInt16] = []
        while ports.count < min(count, 64_512) {
            let port = UInt16.random(in: 1024...65535)
            if chosen.insert(port).inserted { ports.append(port) }
        }
        return ports
    }

    /// Runs `body` on a new thread: the polling loops block for seconds.
    private static func onOwnThread(_ body: @escaping @Sendable () -> CInt?) async -> CInt? {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: body()) }
            thread.name = "harp-spray-punch"
            thread.start()
        }
    }

    /// What starting one connection gave.
    private enum Started {
        case socket(CInt)
        /// The connect failed at once: nothing to watch.
        case skipped
        /// No socket could be made or bound (out of descriptors, the port taken): start no more.
        case exhausted
    }

    /// A non-blocking socket connecting to `address:port`, bound to `localPort` (shared) when given.
    private static func connecting(to address: [UInt8], port: UInt16, from localPort: UInt16?) -> Started {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .exhausted }
        var one: CInt = 1
        if let localPort {
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<CInt>.size))
            var local = socketAddress([0, 0, 0, 0], localPort)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard bound == 0 else {
                close(fd)
                return .exhausted
            }
        }
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
        var remote = socketAddress(address, port)
        let result = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 || errno == EINPROGRESS else {
            // A connect refused at once (a port this side cannot dial): no socket for it, the others go on.
            close(fd)
            return .skipped
        }
        return .socket(fd)
    }

    private static func socketAddress(_ address: [UInt8], _ port: UInt16) -> sockaddr_in {
        var value = sockaddr_in()
        value.sin_family = sa_family_t(AF_INET)
        value.sin_port = port.bigEndian
        value.sin_addr.s_addr =
            UInt32(address[0]) | UInt32(address[1]) << 8 | UInt32(address[2]) << 16
            | UInt32(address[3]) << 24
        return value
    }

    /// Sockets connecting, watched together: the first to connect wins, the others are closed.
    private struct Race {
        var sockets: [pollfd] = []
        var born: [ContinuousClock.Instant] = []
        /// No more sockets will be added: once the last has failed or expired, the race is lost.
        var startedAll = false

        mutating func add(_ fd: CInt) {
            sockets.append(pollfd(fd: fd, events: Int16(POLLOUT), revents: 0))
            born.append(.now)
        }

        /// Polls until a socket connects or `deadline`; `expireAfter`: sockets older than this are closed; `more` may
        /// add sockets before each poll.
        mutating func run(
            until deadline: ContinuousClock.Instant, expireAfter: Duration?, more: (inout Race) -> Void
        ) -> CInt? {
            defer { closeAll() }
            while ContinuousClock.now < deadline {
                more(&self)
                if sockets.isEmpty {
                    guard !startedAll else { return nil }
                    usleep(10_000)
                    continue
                }
                let ready = poll(&sockets, nfds_t(sockets.count), 20)
                if ready > 0 {
                    var index = 0
                    while index < sockets.count {
                        guard sockets[index].revents != 0 else {
                            index += 1
                            continue
                        }
                        var error: CInt = 0
                        var length = socklen_t(MemoryLayout<CInt>.size)
                        let fd = sockets[index].fd
                        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0, error == 0,
                            sockets[index].revents & Int16(POLLOUT) != 0
                        {
                            remove(at: index)
                            return fd
                        }
                        close(fd)
                        remove(at: index)
                    }
                }
                if let expireAfter {
                    let now = ContinuousClock.now
                    var index = 0
                    while index < sockets.count {
                        if now - born[index] >= expireAfter {
                            close(sockets[index].fd)
                            remove(at: index)
                        } else {
                            index += 1
                        }
                    }
                }
            }
            return nil
        }

        private mutating func remove(at index: Int) {
            sockets.swapAt(index, sockets.count - 1)
            born.swapAt(index, born.count - 1)
            sockets.removeLast()
            born.removeLast()
        }

        private mutating func closeAll() {
            for socket in sockets { close(socket.fd) }
            sockets.removeAll()
            born.removeAll()
        }
    }
}
