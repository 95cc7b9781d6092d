import Glibc
internal import Logging
public import NIOCore
public import NIOPosix

extension PeerConnection {
    /// Runs the peer protocol over a byte stream that is not a socket of its own, such as a relay stream through the
    /// signaling server: the same Noise handshake, framing and limits as a direct connection, so whatever carries
    /// the stream sees only ciphertext.
    ///
    /// The connection's channel is one end of a local socket pair; a pump task copies bytes between the other end
    /// and the stream (`incoming` for what arrives, `write` for what leaves), with the socket's back-pressure on
    /// both sides. When either side ends, the other is closed too, and `close` is called once.
    ///
    /// - Returns: once the handshake and the `hello` exchange are done.
    /// - Throws: what `connect` throws, or a socket error from creating the pair.
    public static func over<Incoming: AsyncSequence & Sendable>(
        stream incoming: Incoming, role: PeerChannel.Role, configuration: PeerConfiguration,
        write: @escaping @Sendable (ByteBuffer) async throws -> Void,
        close: @escaping @Sendable () async -> Void,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> PeerConnection where Incoming.Element == ByteBuffer {
        var fds: [Int32] = [-1, -1]
        let kind = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
        guard socketpair(AF_UNIX, kind, 0, &fds) == 0 else {
            await close()
            throw IOError(errnoCode: errno, reason: "socketpair")
        }
        let pump: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        let channel: NIOAsyncChannel<WireMessage, WireMessage>
        let ready: EventLoopFuture<PeerSession>
        do {
            pump = try await ClientBootstrap(group: group).withConnectedSocket(fds[1]) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        } catch {
            _ = Glibc.close(fds[0])
            _ = Glibc.close(fds[1])
            await close()
            throw error
        }
        do {
            (channel, ready) = try await ClientBootstrap(group: group).withConnectedSocket(
                fds[0], channelInitializer: initializer(role, configuration))
        } catch {
            _ = Glibc.close(fds[0])
            try? await pump.channel.close()
            await close()
            throw error
        }
        let logger = configuration.logger
        Task { await Self.runPump(pump, incoming: incoming, write: write, close: close, logger: logger) }
        return try await established(channel, ready: ready, configuration: configuration)
    }

    /// Copies bytes both ways until one side ends, then closes both: the local end, and the stream through `close`.
    private static func runPump<Incoming: AsyncSequence & Sendable>(
        _ pump: NIOAsyncChannel<ByteBuffer, ByteBuffer>, incoming: Incoming,
        write: @escaping @Sendable (ByteBuffer) async throws -> Void, close: @escaping @Sendable () async -> Void,
        logger: Logger
    ) async where Incoming.Element == ByteBuffer {
        let local = pump.channel
        do {
            try await pump.executeThenClose { inbound, outbound in
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        // Local → stream: what the peer protocol writes.
                        do {
                            for try await buffer in inbound { try await write(buffer) }
                        } catch {
                            logger.debug("relayed stream: sending ended", metadata: ["error": "\(error)"])
                        }
                    }
                    group.addTask {
                        // Stream → local: what the other end sent.
                        do {
                            for try await buffer in incoming { try await outbound.write(buffer) }
                        } catch {
                            logger.debug("relayed stream: receiving ended", metadata: ["error": "\(error)"])
                        }
                    }
                    // Whichever direction ends first ends the other: closing the local end stops the first task's
                    // reading, and closing the stream ends the second task's iteration.
                    await group.next()
                    try? await local.close()
                    await close()
                    group.cancelAll()
                }
            }
        } catch {
            logger.debug("relayed stream ended", metadata: ["error": "\(error)"])
        }
    }
}
