internal import ChunkStore
internal import NIOCore
internal import NIOPosix

/// What the shell keeps of one connection: the link (the connection, or the channel of one that carries this swarm),
/// its upload loop's queue and its close signal.
struct LinkHandle: Sendable {
    let link: SwarmLink
    /// Items for the upload loop, in the order the peer asked.
    let uploads: AsyncStream<UploadItem>.Continuation
    /// A goodbye the engine asked for; the connection's task says it and closes.
    let closer: AsyncStream<GoodbyeReason>.Continuation

    func close(_ reason: GoodbyeReason) {
        closer.yield(reason)
        closer.finish()
    }
}

/// A chunk being assembled from one link.
struct AssemblyKey: Hashable, Sendable {
    let link: LinkID
    let chunk: Int
}

/// Connections: admission through the engine, one structured task group per connection (the inbound messages, the
/// upload loop and the close signal), and the bytes of pieces both ways.
extension Swarm {
    /// Serves one authenticated connection until it ends: registers the peer, exchanges announcements, answers its
    /// requests and carries ours. `address` is where the peer accepts connections, if known (for peer exchange).
    /// `relayed`: the connection goes through the signaling server's relay, which the engine uses as a last resort.
    /// The connection carries this swarm only: the peer's `attach`es are refused (see `run(link:...)`).
    public nonisolated func run(
        _ connection: PeerConnection, initiatedByUs: Bool, address: PeerAddress?, relayed: Bool = false
    ) async {
        let trunk = PeerTrunk(connection)
        trunk.start()
        await run(link: trunk.first, initiatedByUs: initiatedByUs, address: address, relayed: relayed)
    }

    /// Serves one link until it ends: a connection's channel 0, or a channel attached to a connection that carries
    /// other swarms too (`PeerTrunk`, docs/protocol.md §5.4).
    public nonisolated func run(
        link peerLink: SwarmLink, initiatedByUs: Bool, address: PeerAddress?, relayed: Bool = false
    ) async {
        let (uploads, uploadSink) = AsyncStream.makeStream(of: UploadItem.self)
        let (closes, closeSink) = AsyncStream.makeStream(of: GoodbyeReason.self, bufferingPolicy: .bufferingNewest(1))
        let handle = LinkHandle(link: peerLink, uploads: uploadSink, closer: closeSink)
        guard let link = await admit(handle, initiatedByUs: initiatedByUs, address: address, relayed: relayed) else {
            var reasons = closes.makeAsyncIterator()
            let reason = await reasons.next() ?? .duplicateConnection
            await peerLink.finish(reason: reason)
            return
        }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.uploadLoop(link, sender: peerLink.sender, items: uploads) }
                group.addTask {
                    for await reason in closes {
                        await peerLink.finish(reason: reason)
                        return
                    }
                }
                defer { group.cancelAll() }
                try await peerLink.trunk.serve(channel: peerLink.channel) { message in
                    await self.receive(message, from: link)
                }
            }
        } catch {
            logger.debug("peer connection ended", metadata: ["link": "\(link)", "error": "\(error)"])
            if let violation = error as? WireProtocolError { await ended(link, violation: violation.reason) }
        }
        uploadSink.finish()
        closeSink.finish()
        await ended(link, violation: nil)
    }

    private func admit(_ handle: LinkHandle, initiatedByUs: Bool, address: PeerAddress?, relayed: Bool) -> LinkID? {
        nextLinkID += 1
        let link = LinkID(nextLinkID)
        let session = handle.link.session
        var address = address
        if address == nil, session.remoteHello.listenPort != 0,
            let remote = handle.link.remoteAddress, let ip = PeerAddress.ipBytes(of: remote)
        {
            address = PeerAddress(ip: ip, port: session.remoteHello.listenPort)
        }
        connections[link] = handle
        feed(
            .connected(
                ConnectedPeer(
                    link: link, deviceKey: session.remoteDeviceKey, initiatedByUs: initiatedByUs,
                    superSeeding: session.remoteHello.capabilities & Hello.Capability.superSeeding != 0,
                    listenAddress: address, relayed: relayed)))
        guard engine.link(of: session.remoteDeviceKey) == link else {
            connections[link] = nil
            return nil
        }
        return link
    }

    private func ended(_ link: LinkID, violation: GoodbyeReason?) {
        if let violation {
            feed(.violated(link, violation))
            return
        }
        if let handle = connections.removeValue(forKey: link) {
            peakBacklog = max(peakBacklog, handle.link.sender.peakBufferedBytes)
        }
        assemblies = assemblies.filter { $0.key.link != link }
        queuedChunks[link] = nil
        feed(.disconnected(link))
    }

    private func receive(_ message: WireMessage, from link: LinkID) {
        let inbound: InboundMessage
        var payload: ByteBuffer?
        switch message {
        case .choke: inbound = .choke
        case .unchoke: inbound = .unchoke
        case .interested: inbound = .interested
        case .notInterested: inbound = .notInterested
        case .bitfield(let bitfield): inbound = .bitfield(bitfield)
        case .have(let chunk): inbound = .have(chunk: chunk)
        case .request(let block): inbound = .request(block)
        case .cancel(let block): inbound = .cancel(block)
        case .piece(let piece):
            inbound = .piece(chunk: piece.chunk, offset: piece.offset, length: piece.data.readableBytes)
            payload = piece.data
        case .manifestRequest(let page): inbound = .manifestRequest(page: page)
        case .manifestPage(let page): inbound = .manifestPage(page)
        case .peerExchange(let addresses): inbound = .peerExchange(addresses)
        case .goodbye, .hello, .keepAlive, .attach, .attached, .detach, .channel, .onChannel: return
        }
        feed(.received(link, inbound), piece: payload)
    }

    /// Keeps a piece, as it arrived, with the chunk being assembled from `link`.
    func keep(_ piece: ByteBuffer, block: BlockRequest, of link: LinkID, chunkLength: Int) {
        let key = AssemblyKey(link: link, chunk: Int(block.chunk))
        assemblies[key, default: ChunkAssembly(length: chunkLength)].keep(piece, at: Int(block.offset))
    }

    // MARK: Uploads

    /// Serves a peer: takes its requests in order and sends through the connection's one bounded queue
    /// (`PeerSender`), pieces with `send` (waits while the backlog is over the queue limit) and manifest pages with
    /// `sendAndWait` (one page in flight at a time). The chunk being served is read once, off the actor, and the next
    /// chunk queued is read while this one's blocks go out: reading a chunk (a `pread` on the thread pool and the hops
    /// there and back) left the connection without data to send at each chunk boundary.
    ///
    /// Not on the actor: there it saved a tenth of a one-to-one seeder's concurrency threads but no measurable time
    /// (docs/benchmarks.md, "One-to-one, fifth part").
    nonisolated func uploadLoop(
        _ link: LinkID, sender: LinkSender, items: AsyncStream<UploadItem>
    ) async throws {
        var cache: (chunk: Int, bytes: ByteBuffer)?
        var ahead: (chunk: Int, read: Task<ByteBuffer?, Never>)?
        defer { ahead?.read.cancel() }
        do {
            for await item in items {
                switch await take(item, by: link) {
                case .none:
                    continue
                case .page(let page):
                    try await sender.sendAndWait(.manifestPage(page))
                case .block(let block, let delay, let next):
                    let chunk = Int(block.chunk)
                    if cache?.chunk != chunk {
                        let bytes: ByteBuffer?
                        if let read = ahead, read.chunk == chunk {
                            bytes = await read.read.value
                        } else {
                            ahead?.read.cancel()
                            bytes = await readChunk(chunk)
                        }
                        ahead = nil
                        guard let bytes else { continue }
                        cache = (chunk, bytes)
                    }
                    if let next, next != chunk, ahead?.chunk != next {
                        ahead?.read.cancel()
                        ahead = (next, Task { await self.readChunk(next) })
                    }
                    // A slice of the chunk read once: no copy per block.
                    guard let cached = cache,
                        let data = cached.bytes.getSlice(at: Int(block.offset), length: Int(block.length))
                    else { continue }
                    if delay > 0 { try await Task.sleep(for: .seconds(delay)) }
                    try await sender.send(
                        .piece(Piece(chunk: block.chunk, offset: block.offset, data: data)))
                    await feed(.blockSent(link, block))
                }
            }
        } catch let error as PeerSendError {
            if case .backlogExceeded = error { await feed(.backlogFull(link)) }
        }
    }

    /// What the upload loop is to send for an item it takes, as the engine decides.
    enum Serve: Sendable {
        case none
        case page(ManifestPage)
        /// A block to send, and the chunk queued after this one's run of requests (to read ahead), if any.
        case block(BlockRequest, delay: Double, next: Int?)
    }

    private func take(_ item: UploadItem, by link: LinkID) -> Serve {
        let t = now
        let actions = engine.handle(.uploadTaken(link, item), at: t)
        recorder?.record(at: t, .uploadTaken(link, item), actions)
        if case .block(let block) = item, queuedChunks[link]?.first == Int(block.chunk) {
            queuedChunks[link]?.removeFirst()
        }
        var serve = Serve.none
        for action in actions {
            switch action {
            case .serveBlock(link, let block, let delay):
                serve = .block(block, delay: delay, next: queuedChunks[link]?.first)
            case .servePage(link, let page):
                if let manifest = engine.manifest { serve = .page(ManifestAssembler.page(page, of: manifest)) }
            default: perform(action, piece: nil)
            }
        }
        return serve
    }

    /// The store's reader of this version (made once per store).
    private func storeReader(_ manifest: Manifest) -> VersionReader? {
        guard let store else { return nil }
        if let reader = versionReader, reader.store === store { return reader }
        let reader = VersionReader(store: store, manifest: manifest, root: root)
        versionReader = reader
        return reader
    }

    /// Reads a whole chunk to serve, from the download in progress or the store, on the thread pool, straight into
    /// the buffer its blocks are sent from.
    private func readChunk(_ chunk: Int) async -> ByteBuffer? {
        guard let manifest = engine.manifest, chunk < manifest.chunks.count else { return nil }
        let sink = self.sink
        let length = manifest.chunks[chunk].length
        let reader = storeReader(manifest)
        do {
            var bytes = try await NIOThreadPool.singleton.runIfActive { () throws -> ByteBuffer? in
                var buffer = ByteBufferAllocator().buffer(capacity: length)
                let read = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { raw in
                    let target = UnsafeMutableRawBufferPointer(rebasing: raw[0..<length])
                    if let sink, try sink.readChunk(chunk, into: target) { return length }
                    guard let reader else { return 0 }
                    try reader.readChunk(chunk, into: target)
                    return length
                }
                return read == length ? buffer : nil
            }
            if options.corruptEveryNthUpload > 0, let length = bytes?.readableBytes {
                uploadsSinceCorruption += 1
                if uploadsSinceCorruption % options.corruptEveryNthUpload == 0,
                    let byte = bytes?.getInteger(at: length / 2, as: UInt8.self)
                {
                    bytes?.setInteger(byte ^ 0xFF, at: length / 2)
                }
            }
            return bytes
        } catch {
            logger.warning("cannot read a chunk to serve", metadata: ["chunk": "\(chunk)", "error": "\(error)"])
            return nil
        }
    }
}

extension OutboundMessage {
    /// The wire form.
    var wire: WireMessage {
        switch self {
        case .choke: .choke
        case .unchoke: .unchoke
        case .interested: .interested
        case .notInterested: .notInterested
        case .bitfield(let bitfield): .bitfield(bitfield)
        case .have(let chunk): .have(chunk: chunk)
        case .request(let block): .request(block)
        case .cancel(let block): .cancel(block)
        case .manifestRequest(let page): .manifestRequest(page: page)
        case .peerExchange(let addresses): .peerExchange(addresses)
        }
    }
}
