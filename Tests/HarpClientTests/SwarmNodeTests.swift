import ChunkStore
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

    /// A swarm whose finished fetch made it an origin says so in the `hello` of every connection it accepts from then
    /// on (`SwarmNode.superSeeding`), so that newcomers ask it only for what it offers; before, it does not.
    @Test func anOriginAfterItsFetchSaysSoInHello() async throws {
        var settings = PeerSettings()
        settings.listenHost = "127.0.0.1"
        let node = SwarmNode(identity: .generate(), settings: settings, logger: Logger(label: "test"))
        let keys = SwarmKeys(contentRoot: Array(repeating: 3, count: 32), salt: Array(repeating: 4, count: 32))
        _ = try await node.open(
            root: Hash256(bytes: Array(repeating: 3, count: 32))!, keys: keys, chunking: .default, expectedSize: nil,
            options: Swarm.Options())
        let port = await node.listenPort
        func helloCapabilities() async throws -> UInt64 {
            var configuration = PeerConfiguration(identity: .generate(), swarmKey: keys.swarmKey)
            configuration.swarmSelector = keys.swarmID
            let connection = try await PeerConnection.connect(
                host: "127.0.0.1", port: port, configuration: configuration)
            let capabilities = connection.session.remoteHello.capabilities
            try? await connection.finish(reason: .normal)
            return capabilities
        }
        #expect(try await helloCapabilities() & Hello.Capability.superSeeding == 0)
        await node.superSeeding(keys)
        #expect(try await helloCapabilities() & Hello.Capability.superSeeding != 0)
        await node.shutdown()
    }
}
