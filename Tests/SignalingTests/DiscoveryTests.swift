import Testing

@testable import SignalingClient
@testable import SignalingProtocol
@testable import SignalingServer

@Suite("Discovery and admission")
struct DiscoveryTests {
    @Test("two clients that know the swarm key find each other")
    func twoClientsFindEachOther() async throws {
        let configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        try await withServer(configuration) { _, url, _ in
            try await withPeers(2, url: url) { peers in
                let swarm = Ed25519Signer()
                let (a, b) = (peers[0], peers[1])
                let first = try await withTimeout("a joins") {
                    try await a.client.join(swarm: swarm, addresses: ["127.0.0.1:40001"])
                }
                #expect(first.isEmpty)
                let second = try await withTimeout("b joins") {
                    try await b.client.join(swarm: swarm, addresses: ["127.0.0.1:40002"])
                }
                #expect(second == [PeerInfo(device: a.device.publicKey, addresses: ["127.0.0.1:40001"])])
                try await a.log.wait("a hears of b") { $0.peerJoined(swarm.publicKey, b.device.publicKey) }
                let event = a.log.events.first { $0.peerJoined(swarm.publicKey, b.device.publicKey) }
                if case .peerJoined(_, let peer) = event { #expect(peer.addresses == ["127.0.0.1:40002"]) }

                await b.client.leave(swarm: swarm.publicKey)
                try await a.log.wait("a hears b left") {
                    if case .peerLeft(let s, let device) = $0 {
                        s == swarm.publicKey && device == b.device.publicKey
                    } else {
                        false
                    }
                }
            }
        }
    }

    @Test("a client that does not know the swarm key is refused and learns no peers")
    func impostorIsRefused() async throws {
        let configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        try await withServer(configuration) { _, url, _ in
            try await withPeers(2, url: url) { peers in
                let swarm = Ed25519Signer()
                let (member, impostor) = (peers[0], peers[1])
                _ = try await withTimeout("member joins") {
                    try await member.client.join(swarm: swarm, addresses: ["127.0.0.1:40001"])
                }
                let outcome: Result<[PeerInfo], SignalClientError> = try await withTimeout("impostor refused") {
                    do {
                        return .success(
                            try await impostor.client.join(
                                swarm: ImpostorSigner(publicKey: swarm.publicKey), addresses: ["127.0.0.1:40002"]))
                    } catch let error as SignalClientError {
                        return .failure(error)
                    }
                }
                #expect(outcome == .failure(.refused(.badSwarmProof)))
                #expect(!impostor.log.events.contains { $0.anyPeerJoined })
                #expect(!impostor.log.events.contains { $0.joined(swarm.publicKey) != nil })
                // The member was never told about the impostor. The server sends the members' announcements before
                // it answers a join, so a later join of the member's has its `joined` event after any such
                // announcement on the member's ordered event stream: wait for it, then look.
                let later = Ed25519Signer()
                _ = try await withTimeout("member joins again") {
                    try await member.client.join(swarm: later, addresses: [])
                }
                try await member.log.wait("the member's later join") { $0.joined(later.publicKey) != nil }
                #expect(!member.log.events.contains { $0.peerJoined(swarm.publicKey, impostor.device.publicKey) })
            }
        }
    }

    @Test("a wrong organisation join key is refused; the right one is accepted")
    func joinKey() async throws {
        var configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        configuration.joinKey = Array("correct horse".utf8)
        try await withServer(configuration) { _, url, _ in
            try await withPeers(1, url: url, configure: { $0.joinKey = Array("wrong horse".utf8) }) { peers in
                try await peers[0].log.wait("bad-join-key error") { $0.serverErrorCode == .badJoinKey }
                #expect(!peers[0].log.events.contains { $0.connected })
            }
            try await withPeers(1, url: url, configure: { $0.joinKey = nil }) { peers in
                try await peers[0].log.wait("missing join key refused") { $0.serverErrorCode == .badJoinKey }
                #expect(!peers[0].log.events.contains { $0.connected })
            }
            try await withPeers(1, url: url, configure: { $0.joinKey = Array("correct horse".utf8) }) { peers in
                try await peers[0].log.wait("connected with the right key") { $0.connected }
                let swarm = Ed25519Signer()
                let found = try await withTimeout("join") {
                    try await peers[0].client.join(swarm: swarm, addresses: [])
                }
                #expect(found.isEmpty)
            }
        }
    }

    @Test("a disconnected member is announced as left; a device that connects twice replaces its old connection")
    func disconnectAndReplace() async throws {
        let configuration = makeServerConfiguration(dataDirectory: try temporaryDirectory())
        try await withServer(configuration) { _, url, _ in
            try await withPeers(1, url: url) { watchers in
                let watcher = watchers[0]
                let swarm = Ed25519Signer()
                _ = try await withTimeout("watcher joins") {
                    try await watcher.client.join(swarm: swarm, addresses: [])
                }
                let device = Ed25519Signer()
                try await withPeers(1, url: url, devices: [device]) { first in
                    _ = try await withTimeout("first joins") {
                        try await first[0].client.join(swarm: swarm, addresses: ["a:1"])
                    }
                    try await withPeers(1, url: url, devices: [device]) { second in
                        try await first[0].log.wait("old connection replaced") { $0.serverErrorCode == .replaced }
                        try await watcher.log.wait("replaced member left") {
                            if case .peerLeft(_, let left) = $0 { left == device.publicKey } else { false }
                        }
                        // The replaced client stops instead of fighting for the device key.
                        try await first[0].log.wait("replaced client stopped") {
                            if case .disconnected = $0 { true } else { false }
                        }
                        _ = try await withTimeout("second joins") {
                            try await second[0].client.join(swarm: swarm, addresses: ["b:2"])
                        }
                        try await watcher.log.wait(count: 2, "member joined again") {
                            $0.peerJoined(swarm.publicKey, device.publicKey)
                        }
                    }
                }
                // The second client was stopped (its connection closed): the watcher hears the member left.
                try await watcher.log.wait(count: 2, "member left on disconnect") {
                    if case .peerLeft(_, let left) = $0 { left == device.publicKey } else { false }
                }
            }
        }
    }
}
