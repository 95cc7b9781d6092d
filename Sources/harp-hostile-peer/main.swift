// harp-hostile-peer: a peer that knows K and misbehaves, against a real seeder (driven by bench/peer-attack/run.sh).
//
//   harp-hostile-peer ATTACK HOST:PORT SIDECAR SECONDS
//
// SIDECAR is the version's sidecar file (`.harp/<fileid>.harp`): the swarm key K is derived from it as any member
// derives it, and the handshake is the real one. Only loopback addresses are accepted. ATTACK is one of:
//   manifest-flood   ask for manifest page 0 over and over, never read
//   request-flood    read the manifest, get unchoked, then ask for blocks over and over, never read
//   cancel-flood     get unchoked, queue requests, then send cancels of blocks never asked for, never read
//   have-flood       announce chunks past the file's end, and bitfields of the largest size
//   stall            send half a frame, then nothing
// It prints one line: how long the connection lasted, how many messages were sent, and whether the other side closed
// it (exit 0) or it was still open after SECONDS (exit 1).
import ChunkStore
import Foundation
import Logging
import NIOCore
import NIOPosix
import SwarmKit

@main
struct HostilePeerTool {
    static func main() async throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard arguments.count == 4, let address = PeerAddress(hostAndPort: arguments[1]),
            address.ip.count == 4 ? address.ip[0] == 127 : address.ip == [UInt8](repeating: 0, count: 15) + [1],
            let seconds = Double(arguments[3])
        else { usage() }
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: arguments[2])),
            let sidecar = try? Sidecar(json: Array(data))
        else {
            FileHandle.standardError.write(Data("harp-hostile-peer: \(arguments[2]) is not a readable sidecar\n".utf8))
            exit(2)
        }
        let attack = arguments[0]
        var configuration = PeerConfiguration(
            identity: .generate(), swarmKey: sidecar.swarmKeys.swarmKey)
        configuration.logger = Logger(label: "hostile", factory: { _ in SwiftLogNoOpLogHandler() })
        configuration.enforceAnnouncements = false
        configuration.swarmSelector = sidecar.swarmKeys.swarmID
        configuration.idleTimeout = .seconds(3600)
        var peer = try await Attacker.connect(host: address.host, port: Int(address.port), configuration: configuration)
        let started = ContinuousClock.now
        let deadline = started + .milliseconds(Int(seconds * 1000))
        let closed: Bool
        switch attack {
        case "manifest-flood":
            closed = await peer.flood(until: deadline) { _ in .manifestRequest(page: 0) }
        case "request-flood":
            let lengths = try await peer.readManifest()
            let announced = try await peer.getUnchoked()
            closed = await peer.flood(until: deadline) { i in
                let chunk = announced[i % announced.count]
                let length = min(Int(WireLimits.maxBlockLength), lengths[chunk])
                return .request(BlockRequest(chunk: UInt32(chunk), offset: 0, length: UInt32(length)))
            }
        case "cancel-flood":
            let lengths = try await peer.readManifest()
            let announced = try await peer.getUnchoked()
            _ = await peer.write(
                (0..<1024).map { i in
                    let chunk = announced[i % announced.count]
                    let length = min(Int(WireLimits.maxBlockLength), lengths[chunk])
                    return .request(BlockRequest(chunk: UInt32(chunk), offset: 0, length: UInt32(length)))
                })
            closed = await peer.flood(until: deadline) { i in
                .cancel(BlockRequest(chunk: UInt32(truncatingIfNeeded: 1_000_000 + i), offset: 0, length: 1))
            }
        case "have-flood":
            closed = await peer.flood(until: deadline) { i in
                i % 64 == 63
                    ? .bitfield(Bitfield(chunkCount: WireLimits.maxBitfieldChunks))
                    : .have(chunk: UInt32(truncatingIfNeeded: 0xFFFF_0000 + i))
            }
        case "stall":
            closed = try await peer.stall(until: deadline)
        default:
            usage()
        }
        let lasted = ContinuousClock.now - started
        print(
            "attack \(attack): \(closed ? "closed by the peer" : "still open") after "
                + "\(String(format: "%.2f", Double(lasted.components.seconds) + Double(lasted.components.attoseconds) * 1e-18)) s, "
                + "\(peer.sent) messages sent")
        try? await peer.channel.close()
        exit(closed ? 0 : 1)
    }

    static func usage() -> Never {
        FileHandle.standardError.write(
            Data(
                ("usage: harp-hostile-peer manifest-flood|request-flood|cancel-flood|have-flood|stall "
                    + "127.0.0.1:PORT SIDECAR SECONDS\n").utf8))
        exit(2)
    }
}

/// One hostile connection: writes ignoring every bound, reads from its socket only while it waits for a message.
struct Attacker {
    let channel: any Channel
    private var inbound: AsyncThrowingStream<WireMessage, any Error>.AsyncIterator
    var sent = 0
    /// What the other side announced and whether it unchoked this side, from every message read so far.
    var announced: Set<Int> = []
    var unchoked = false

    /// Connects, completes the real handshake and hello, then turns reading off.
    static func connect(host: String, port: Int, configuration: PeerConfiguration) async throws -> Attacker {
        let (messages, sink) = AsyncThrowingStream.makeStream(of: WireMessage.self)
        let (channel, ready) = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let ready = try PeerChannel.addHandlers(to: channel, role: .initiator, configuration: configuration)
                    try channel.pipeline.syncOperations.addHandler(Collector(sink: sink))
                    return (channel, ready)
                }
            }
        _ = try await ready.get()
        try await channel.setOption(.autoRead, value: false).get()
        return Attacker(channel: channel, inbound: messages.makeAsyncIterator())
    }

    /// The next message from the other side (nil once the connection ended).
    mutating func next() async throws -> WireMessage? {
        try? await channel.setOption(.autoRead, value: true).get()
        defer { channel.setOption(.autoRead, value: false).whenComplete { _ in } }
        let message = try await inbound.next()
        switch message {
        case .unchoke: unchoked = true
        case .choke: unchoked = false
        case .have(let chunk): announced.insert(Int(chunk))
        case .bitfield(let bitfield):
            announced.formUnion((0..<Int(bitfield.chunkCount)).filter { bitfield.contains(UInt32($0)) })
        default: break
        }
        return message
    }

    /// Writes `messages` and waits until they reached the kernel; false when the connection is gone.
    mutating func write(_ messages: [WireMessage]) async -> Bool {
        sent += messages.count
        return await Self.write(messages, to: channel)
    }

    static func write(_ messages: [WireMessage], to channel: any Channel) async -> Bool {
        guard let last = messages.last else { return channel.isActive }
        for message in messages.dropLast() { channel.write(message, promise: nil) }
        let promise = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(last, promise: promise)
        return (try? await promise.futureResult.get()) != nil
    }

    /// Writes batches of `make(i)` until the connection closes or `deadline`; returns whether it closed.
    mutating func flood(until deadline: ContinuousClock.Instant, _ make: @Sendable (Int) -> WireMessage) async -> Bool {
        var i = 0
        let channel = self.channel
        while ContinuousClock.now < deadline {
            let batch = (i..<i + 256).map(make)
            i += 256
            sent += batch.count
            let written = await withTaskGroup(of: Bool?.self) { group in
                group.addTask { await Self.write(batch, to: channel) }
                group.addTask {
                    try? await Task.sleep(until: deadline, clock: .continuous)
                    return nil
                }
                let first = await group.next()!
                group.cancelAll()
                return first
            }
            guard let written else { break }
            if !written { return true }
        }
        // Not reading, this side would not see a FIN: a write fails once the other side has closed.
        try? await Task.sleep(for: .milliseconds(200))
        return !(await Self.write([.keepAlive], to: channel)) || !channel.isActive
    }

    /// Asks for and reads the whole manifest; returns the chunk lengths.
    mutating func readManifest() async throws -> [Int] {
        _ = await write([.manifestRequest(page: 0)])
        var pages: [UInt32: [Int]] = [:]
        var pageCount: UInt32 = 1
        while pages.count < Int(pageCount), let message = try await next() {
            guard case .manifestPage(let page) = message else { continue }
            if pages.isEmpty, page.pageCount > 1 {
                _ = await write((1..<page.pageCount).map { .manifestRequest(page: $0) })
            }
            pageCount = page.pageCount
            pages[page.page] = page.entries.map { Int($0.length) }
        }
        let lengths = (0..<pageCount).flatMap { pages[$0] ?? [] }
        guard !lengths.isEmpty else { throw AttackError.noManifest }
        return lengths
    }

    /// Says interested and reads until unchoked and at least one chunk was announced; returns the announced chunks
    /// (a super-seeding origin announces a few at a time, and refuses requests for others).
    mutating func getUnchoked() async throws -> [Int] {
        _ = await write([.interested])
        while !(unchoked && !announced.isEmpty), try await next() != nil {}
        guard unchoked, !announced.isEmpty else { throw AttackError.notUnchoked }
        return announced.sorted()
    }

    /// Half a frame below the encryption, then nothing; reads until the other side closes.
    mutating func stall(until deadline: ContinuousClock.Instant) async throws -> Bool {
        let channel = self.channel
        try await channel.eventLoop.submit {
            let head = try channel.pipeline.syncOperations.context(handlerType: ByteToMessageHandler<FrameDecoder>.self)
            // Written from the first handler's context, the bytes go straight to the socket.
            head.writeAndFlush(
                NIOAny(channel.allocator.buffer(bytes: [0x03, 0xE8] + [UInt8](repeating: 0xAB, count: 10))),
                promise: nil)
        }.get()
        sent += 1
        // This side closes at the deadline; the connection counts as closed by the other side only if it ended first.
        let wait = deadline - ContinuousClock.now
        let milliseconds = wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000
        let timer = channel.eventLoop.scheduleTask(in: .milliseconds(max(milliseconds, 0))) {
            channel.close(promise: nil)
        }
        while (try? await next()) ?? nil != nil {}
        timer.cancel()
        return (try? await timer.futureResult.get()) == nil
    }
}

/// The last handler of the pipeline: passes messages on to `Attacker.next`.
final class Collector: ChannelInboundHandler, Sendable {
    typealias InboundIn = WireMessage
    let sink: AsyncThrowingStream<WireMessage, any Error>.Continuation

    init(sink: AsyncThrowingStream<WireMessage, any Error>.Continuation) { self.sink = sink }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { sink.yield(Self.unwrapInboundIn(data)) }
    func channelInactive(context: ChannelHandlerContext) { sink.finish() }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { sink.finish(throwing: error) }
}

enum AttackError: Error, CustomStringConvertible {
    case noManifest, notUnchoked
    var description: String {
        switch self {
        case .noManifest: "the peer sent no manifest: is SIDECAR the seeded file's?"
        case .notUnchoked: "the peer closed before unchoking this side and announcing a chunk"
        }
    }
}
