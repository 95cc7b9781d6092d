import ChunkStore
import Foundation
import NIOCore
import Synchronization
import Testing

@testable import SwarmKit

/// Several swarms on one connection (docs/protocol.md §5.4): the messages, the rules of the session state machine,
/// the proofs, and two swarms fetched over one real loopback connection.
@Suite(.timeLimit(.minutes(2))) struct ChannelTests {
    static let info = NoiseHandshakeCompleted(
        remoteDeviceKey: Array(repeating: 7, count: 32), handshakeHash: Array(repeating: 1, count: 32),
        cipher: .chaChaPoly)
    static let swarmID = Array(repeating: UInt8(9), count: 32)
    static let proof = Array(repeating: UInt8(3), count: 32)

    /// A machine past the hello; `remoteChannels`: the peer's hello offers channels.
    static func open(
        initiator: Bool = true, offers: Bool = true, remoteChannels: Bool = true
    )
        -> PeerSessionStateMachine
    {
        var machine = PeerSessionStateMachine(isInitiator: initiator, offersChannels: offers)
        machine.handshakeCompleted(info)
        var hello = Hello(deviceKey: info.remoteDeviceKey)
        if remoteChannels { hello.capabilities = Hello.Capability.channels }
        _ = machine.receive(.hello(hello))
        return machine
    }

    static func reason(_ action: PeerSessionStateMachine.InboundAction) -> GoodbyeReason? {
        if case .violation(let error) = action { return error.reason }
        return nil
    }

    // MARK: Messages

    @Test func channelMessagesRoundTripAndTheirLimitsHold() throws {
        let messages: [WireMessage] = [
            .attach(Attach(channel: 63, swarmID: Self.swarmID, capabilities: 3, proof: Self.proof)),
            .attached(Attached(channel: 1, capabilities: 1, proof: Self.proof)),
            .detach(channel: 0, reason: .notServed),
            .channel(63),
        ]
        for message in messages {
            var buffer = message.encoded()
            let length = buffer.readInteger(as: UInt32.self).map(Int.init)
            _ = buffer.readInteger(as: UInt8.self)
            let type = buffer.readInteger(as: UInt8.self) ?? 0xFF
            #expect(buffer.readableBytes == (length ?? 0) - 2)
            #expect(try WireMessage.decode(typeCode: type, body: buffer) == message)
        }
        // Channel 0 is never attached; 64 is out of range everywhere.
        for (type, body) in [
            (WireMessage.Kind.attach, [0, 0] + Self.swarmID + Array(repeating: 0, count: 8) + Self.proof),
            (.attach, [0, 64] + Self.swarmID + Array(repeating: 0, count: 8) + Self.proof),
            (.attached, [0, 0] + Array(repeating: 0, count: 8) + Self.proof), (.detach, [0, 64, 0, 0]),
            (.channel, [0, 64]),
        ] {
            #expect(throws: WireProtocolError.self) {
                try WireMessage.decode(typeCode: type.rawValue, body: ByteBuffer(bytes: body))
            }
        }
    }

    // MARK: The state machine

    @Test func channelMessagesNeedBothSidesToOfferChannels() {
        let attach = WireMessage.attach(Attach(channel: 2, swarmID: Self.swarmID, capabilities: 0, proof: Self.proof))
        for (offers, remote) in [(false, true), (true, false), (false, false)] {
            var machine = Self.open(offers: offers, remoteChannels: remote)
            #expect(Self.reason(machine.receive(attach)) == .unknownMessage)
        }
        var machine = Self.open()
        #expect(machine.receive(attach) == .forward(attach))
    }

    @Test func aPeerNumbersItsChannelsByItsRoleAndOnlyOnce() {
        // This side initiated: the peer (responder) attaches even channels.
        var machine = Self.open(initiator: true)
        let odd = WireMessage.attach(Attach(channel: 1, swarmID: Self.swarmID, capabilities: 0, proof: Self.proof))
        #expect(Self.reason(machine.receive(odd)) == .malformedMessage)
        var again = Self.open(initiator: true)
        let even = WireMessage.attach(Attach(channel: 2, swarmID: Self.swarmID, capabilities: 0, proof: Self.proof))
        #expect(again.receive(even) == .forward(even))
        #expect(Self.reason(again.receive(even)) == .malformedMessage)
        // An answer to an attach this side never sent.
        var stray = Self.open()
        #expect(Self.reason(stray.receive(.attached(Attached(channel: 1, capabilities: 0, proof: Self.proof)))) != nil)
        // Messages on a channel that is not attached.
        var unattached = Self.open()
        #expect(Self.reason(unattached.receive(.channel(5))) == .malformedMessage)
    }

    @Test func eachChannelHasItsOwnAnnouncements() {
        var machine = Self.open(initiator: true)
        var bitfield = Bitfield(chunkCount: 8)
        bitfield.insert(3)
        // Chunk 3 announced on channel 0, then channel 1 attached by this side with nothing announced on it.
        guard case .write = machine.willSend(.bitfield(bitfield)) else {
            Issue.record("the bitfield was not written")
            return
        }
        _ = machine.willSend(.attach(Attach(channel: 1, swarmID: Self.swarmID, capabilities: 0, proof: Self.proof)))
        let attached = WireMessage.attached(Attached(channel: 1, capabilities: 0, proof: Self.proof))
        #expect(machine.receive(attached) == .forward(attached))
        let request = BlockRequest(chunk: 3, offset: 0, length: 1024)
        #expect(machine.receive(.request(request)) == .forward(.request(request)))
        #expect(machine.receive(.channel(1)) == .drop)
        #expect(Self.reason(machine.receive(.request(request))) == .chunkNotAnnounced)

        var other = Self.open(initiator: true)
        _ = other.willSend(.attach(Attach(channel: 1, swarmID: Self.swarmID, capabilities: 0, proof: Self.proof)))
        _ = other.receive(attached)
        _ = other.willSend(.onChannel(1, .bitfield(bitfield)))
        #expect(other.receive(.channel(1)) == .drop)
        #expect(other.receive(.request(request)) == .forward(.onChannel(1, .request(request))))
        #expect(other.receive(.channel(0)) == .drop)
        #expect(Self.reason(other.receive(.request(request))) == .chunkNotAnnounced)
    }

    @Test func aChannelSwitchIsWrittenOnlyWhenTheChannelChanges() {
        var machine = Self.open(initiator: true)
        _ = machine.willSend(.attach(Attach(channel: 1, swarmID: Self.swarmID, capabilities: 0, proof: Self.proof)))
        _ = machine.receive(.attached(Attached(channel: 1, capabilities: 0, proof: Self.proof)))
        #expect(machine.willSend(.interested) == .write(.interested, switchTo: nil, closeAfter: false))
        #expect(machine.willSend(.onChannel(1, .choke)) == .write(.choke, switchTo: .channel(1), closeAfter: false))
        #expect(machine.willSend(.onChannel(1, .unchoke)) == .write(.unchoke, switchTo: nil, closeAfter: false))
        #expect(machine.willSend(.have(chunk: 1)) == .write(.have(chunk: 1), switchTo: .channel(0), closeAfter: false))
        // Control messages belong to no channel: no switch before them.
        #expect(
            machine.willSend(.detach(channel: 1, reason: .normal))
                == .write(.detach(channel: 1, reason: .normal), switchTo: nil, closeAfter: false))
        // After this side's detach, its own messages on the channel are not written.
        #expect(machine.willSend(.onChannel(1, .choke)) == .drop)
    }

    @Test func aDetachIsAnsweredAndWhatCrossedItIsDropped() {
        var machine = Self.open(initiator: true)
        _ = machine.willSend(.attach(Attach(channel: 1, swarmID: Self.swarmID, capabilities: 0, proof: Self.proof)))
        _ = machine.receive(.attached(Attached(channel: 1, capabilities: 0, proof: Self.proof)))
        // This side ends the channel; what the peer sent before reading the detach is dropped, then its answer frees
        // the channel and anything more on it is a violation.
        _ = machine.willSend(.detach(channel: 1, reason: .normal))
        #expect(machine.receive(.channel(1)) == .drop)
        #expect(machine.receive(.interested) == .drop)
        #expect(machine.receive(.detach(channel: 1, reason: .normal)) == .drop)
        #expect(Self.reason(machine.receive(.interested)) == .malformedMessage)

        // The peer ends a channel: passed on, answered by this side.
        var peer = Self.open(initiator: true)
        _ = peer.willSend(.attach(Attach(channel: 1, swarmID: Self.swarmID, capabilities: 0, proof: Self.proof)))
        _ = peer.receive(.attached(Attached(channel: 1, capabilities: 0, proof: Self.proof)))
        let detach = WireMessage.detach(channel: 1, reason: .normal)
        #expect(peer.receive(detach) == .forward(detach))
        guard case .write = peer.willSend(detach) else {
            Issue.record("the answering detach was not written")
            return
        }
        #expect(peer.channels[1] == nil)
        // Channel 0 can end while another goes on.
        var zero = Self.open()
        #expect(zero.receive(.detach(channel: 0, reason: .normal)) == .forward(.detach(channel: 0, reason: .normal)))
        _ = zero.willSend(.detach(channel: 0, reason: .normal))
        #expect(zero.willSend(.interested) == .drop)
        #expect(Self.reason(zero.receive(.interested)) == .malformedMessage)
    }

    // MARK: Proofs

    @Test func aProofBindsKeyRoleConnectionChannelAndSwarm() {
        let key = SecureBytes(copying: Array(repeating: UInt8(5), count: 32))
        let other = SecureBytes(copying: Array(repeating: UInt8(6), count: 32))
        let hash = Array(repeating: UInt8(1), count: 32)
        let proof = ChannelProof.make(.attach, swarmKey: key, handshakeHash: hash, channel: 1, swarmID: Self.swarmID)
        #expect(
            ChannelProof.verify(proof, .attach, swarmKey: key, handshakeHash: hash, channel: 1, swarmID: Self.swarmID))
        #expect(
            !ChannelProof.verify(
                proof, .attach, swarmKey: other, handshakeHash: hash, channel: 1, swarmID: Self.swarmID))
        #expect(
            !ChannelProof.verify(
                proof, .attached, swarmKey: key, handshakeHash: hash, channel: 1, swarmID: Self.swarmID))
        #expect(
            !ChannelProof.verify(
                proof, .attach, swarmKey: key, handshakeHash: Array(repeating: 2, count: 32), channel: 1,
                swarmID: Self.swarmID))
        #expect(
            !ChannelProof.verify(proof, .attach, swarmKey: key, handshakeHash: hash, channel: 3, swarmID: Self.swarmID))
        #expect(
            !ChannelProof.verify(
                proof, .attach, swarmKey: key, handshakeHash: hash, channel: 1, swarmID: Array(repeating: 8, count: 32))
        )
        #expect(
            !ChannelProof.verify(
                Array(proof.prefix(31)), .attach, swarmKey: key, handshakeHash: hash, channel: 1, swarmID: Self.swarmID)
        )
    }

    // MARK: Two swarms, one connection

    /// A device with two swarms, one listener (for swarm X's key) and trunks for the peer's attaches of Y.
    struct Device {
        let identity = DeviceIdentity.generate()
        let x: Swarm
        let y: Swarm
        let keysX: SwarmKeys
        let keysY: SwarmKeys

        init(_ originX: SwarmTests.Origin, _ originY: SwarmTests.Origin) async {
            keysX = SwarmKeys(contentRoot: originX.root.bytes, salt: Array(repeating: 1, count: 32))
            keysY = SwarmKeys(contentRoot: originY.root.bytes, salt: Array(repeating: 2, count: 32))
            x = Swarm(
                root: originX.root, chunking: SwarmTests.small, expectedSize: originX.manifest.size,
                identity: identity, logger: SwarmTests.quiet)
            y = Swarm(
                root: originY.root, chunking: SwarmTests.small, expectedSize: originY.manifest.size,
                identity: identity, logger: SwarmTests.quiet)
            await x.start()
            await y.start()
        }

        var configuration: PeerConfiguration {
            var configuration = PeerConfiguration(identity: identity, swarmKey: keysX.swarmKey)
            configuration.capabilities = Hello.Capability.channels
            configuration.logger = SwarmTests.quiet
            return configuration
        }

        /// Accepts attaches of Y only.
        func offer() -> PeerTrunk.Offer {
            let (keysY, y) = (self.keysY, self.y)
            return { swarmID in
                guard swarmID == keysY.swarmID else { return nil }
                return PeerTrunk.Acceptance(swarmKey: keysY.swarmKey, capabilities: 0) { link in
                    await y.run(link: link, initiatedByUs: false, address: nil)
                }
            }
        }
    }

    @Test func twoSwarmsShareOneConnectionAndTheFirstCanEndFirst() async throws {
        let originX = try SwarmTests.Origin(size: 1 << 20)
        let originY = try SwarmTests.Origin(size: 1 << 20)
        let seeder = await Device(originX, originY)
        try await seeder.x.seed(manifest: originX.manifest, store: originX.store)
        try await seeder.y.seed(manifest: originY.manifest, store: originY.store)
        let accepted = Atomic<Int>(0)
        let listener = try await PeerListener.bind(host: "127.0.0.1", port: 0, configuration: seeder.configuration)
        let port = try #require(listener.localAddress?.port)
        let offer = seeder.offer()
        let seederX = seeder.x
        Task {
            try? await listener.run { connection in
                accepted.add(1, ordering: .relaxed)
                let trunk = PeerTrunk(connection, offer: offer)
                trunk.start()
                await seederX.run(link: trunk.first, initiatedByUs: false, address: nil)
                await trunk.closed()
            }
        }

        let fetcher = await Device(originX, originY)
        let connection = try await PeerConnection.connect(
            host: "127.0.0.1", port: port, configuration: fetcher.configuration)
        #expect(connection.session.carriesChannels)
        let trunk = PeerTrunk(connection, offer: fetcher.offer())
        trunk.start()
        let fetcherX = fetcher.x
        let firstDone = Task { await fetcherX.run(link: trunk.first, initiatedByUs: true, address: nil) }

        // A swarm the seeder does not serve, and Y with a key that is not Y's: refused.
        let unknown = SwarmKeys(contentRoot: Array(repeating: 4, count: 32), salt: Array(repeating: 4, count: 32))
        #expect(await trunk.attach(swarmID: unknown.swarmID, swarmKey: unknown.swarmKey, capabilities: 0) == nil)
        #expect(await trunk.attach(swarmID: fetcher.keysY.swarmID, swarmKey: unknown.swarmKey, capabilities: 0) == nil)
        let linkY = try #require(
            await trunk.attach(swarmID: fetcher.keysY.swarmID, swarmKey: fetcher.keysY.swarmKey, capabilities: 0))
        #expect(linkY.channel % 2 == 1 && linkY.channel > 0)
        let fetcherY = fetcher.y
        Task { await fetcherY.run(link: linkY, initiatedByUs: true, address: nil) }

        // X first, then its swarm ends (channel 0 detached) while Y goes on over the same connection.
        let storeX = try originX.newStore("fetcher-x")
        let destinationX = originX.directory + "/copy.bin"
        _ = try await fetcher.x.fetch(SwarmTests.target(storeX, originX.root, destinationX, webSeed: nil))
        await fetcher.x.stop()
        await firstDone.value
        #expect(trunk.openChannels == 1)
        let storeY = try originY.newStore("fetcher-y")
        let destinationY = originY.directory + "/copy.bin"
        _ = try await fetcher.y.fetch(SwarmTests.target(storeY, originY.root, destinationY, webSeed: nil))

        #expect(accepted.load(ordering: .relaxed) == 1, "one connection for both swarms")
        #expect(await fetcher.x.snapshot.bytesFromPeers == Int64(originX.bytes.count))
        #expect(await fetcher.y.snapshot.bytesFromPeers == Int64(originY.bytes.count))
        // The last channel's end closes the connection.
        await fetcher.y.stop()
        await trunk.closed()
        #expect(trunk.openChannels == 0)
        try? await listener.close()
        await seeder.x.stop()
        await seeder.y.stop()
    }
}
