import Foundation
import Logging
import SwarmKit
import Testing

@testable import HarpClient

/// The node's one listening port.
@Suite struct SwarmNodeTests {
    /// Swarms opened concurrently (a folder's files at seed) share the one listener: every caller gets the port of
    /// the same bind (with a plain check-then-bind, each caller that arrived during the bind bound a listener of its
    /// own, which leaked and was advertised for some swarms).
    @Test func concurrentOpensBindOneListener() async throws {
        var settings = PeerSettings()
        settings.listenHost = "127.0.0.1"
        let node = SwarmNode(identity: .generate(), settings: settings, logger: Logger(label: "test"))
        let key = SwarmKeys(contentRoot: Array(repeating: 1, count: 32), salt: Array(repeating: 2, count: 32)).swarmKey
        let ports = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<8 { group.addTask { try await node.listen(templateKey: key) } }
            return try await group.reduce(into: Set<Int>()) { $0.insert($1) }
        }
        #expect(ports.count == 1)
        #expect(ports.first != 0)
        #expect(await node.listenPort == ports.first)
        await node.shutdown()
    }
}
