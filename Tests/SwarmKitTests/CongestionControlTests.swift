import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import SwarmKit

#if canImport(Glibc)
    import Glibc
#endif

/// Peer connections ask the kernel for their congestion control (`PeerConfiguration.congestionControl`), on the
/// dialling and the accepting side; a name the kernel refuses leaves the default and the connection works.
@Suite("Peer connections: congestion control")
struct CongestionControlTests {
    static func sysctl(_ name: String) -> [String] {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/\(name)", encoding: .utf8)) ?? ""
        return text.split(whereSeparator: \.isWhitespace).map(String.init)
    }

    static func congestion(of channel: any Channel) async throws -> String {
        let provider = try #require(channel as? any SocketOptionProvider)
        let value: CongestionName = try await provider.unsafeGetSocketOption(
            level: SocketOptionLevel(IPPROTO_TCP), name: SocketOptionName(TCP_CONGESTION)
        ).get()
        let bytes = withUnsafeBytes(of: value.storage) { Array($0) }
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// Connects a client to a listener with `name` asked for on both sides; returns what each socket uses.
    static func connect(asking name: String?) async throws -> (client: String, server: String) {
        var configuration = LoopbackTests.configuration()
        configuration.congestionControl = name
        let listener = try await PeerListener.bind(host: "127.0.0.1", port: 0, configuration: configuration)
        let accepted = AsyncStream.makeStream(of: String.self)
        async let serving: Void = listener.run { connection in
            accepted.continuation.yield(try await Self.congestion(of: connection.channel.channel))
            try await connection.channel.executeThenClose { inbound, _ in for try await _ in inbound {} }
        }
        let connection = try await PeerConnection.connect(
            host: "127.0.0.1", port: try LoopbackTests.port(listener), configuration: configuration)
        let client = try await Self.congestion(of: connection.channel.channel)
        var iterator = accepted.stream.makeAsyncIterator()
        let server = await iterator.next() ?? ""
        try await connection.channel.channel.close()
        try await listener.close()
        try? await serving
        return (client, server)
    }

    @Test func bothSidesUseTheAlgorithmAskedFor() async throws {
        let available = Self.sysctl("tcp_available_congestion_control")
        let current = Self.sysctl("tcp_congestion_control").first ?? ""
        // An algorithm this kernel has that is not its default, and that this process may choose.
        let allowed = geteuid() == 0 ? available : Self.sysctl("tcp_allowed_congestion_control")
        guard let other = allowed.first(where: { $0 != current }) else { return }
        let used = try await Self.connect(asking: other)
        #expect(used.client == other)
        #expect(used.server == other)
    }

    @Test func aNameTheKernelRefusesLeavesTheDefault() async throws {
        let current = Self.sysctl("tcp_congestion_control").first ?? ""
        let used = try await Self.connect(asking: "no-such-algorithm")
        #expect(used.client == current)
        #expect(used.server == current)
    }
}
