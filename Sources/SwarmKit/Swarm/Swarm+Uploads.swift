internal import NIOCore

/// What a peer asked this side to send, in the order it asked: the upload loop of its connection takes them one by
/// one (`UploadQueue` keeps the counts and the cancels).
enum UploadRequest: Sendable {
    case block(BlockRequest)
    case manifestPage(Int)
}

/// Serving a peer: one loop per connection takes its requests in order and sends through the connection's one
/// bounded queue (`PeerSender`), pieces with `send` (waits while the backlog is over the queue limit) and manifest
/// pages with `sendAndWait` (one page in flight at a time).
extension Swarm {
    nonisolated func uploadLoop(
        key: PeerKey, id: UInt64, connection: PeerConnection, requests: AsyncStream<UploadRequest>
    ) async throws {
        do {
            for await request in requests {
                switch request {
                case .block(let block):
                    guard let data = await blockToServe(block, to: key, id: id) else { continue }
                    let wait = await uploadDelay(bytes: data.readableBytes)
                    if wait > 0 { try await Task.sleep(for: .milliseconds(Int(wait * 1000))) }
                    try await connection.sender.send(
                        .piece(Piece(chunk: block.chunk, offset: block.offset, data: data)))
                    await uploaded(block, bytes: data.readableBytes, to: key, id: id)
                case .manifestPage(let page):
                    guard let message = await pageToServe(page, to: key, id: id) else { continue }
                    try await connection.sender.sendAndWait(message)
                }
            }
        } catch let error as PeerSendError {
            await sendFailed(key, id: id, error)
        }
    }

    /// Paces uploads to `options.uploadLimit`: the seconds to wait before sending `bytes`.
    func uploadDelay(bytes: Int) -> Double {
        guard let limit = options.uploadLimit, limit > 0 else { return 0 }
        let t = now
        let start = max(t, nextUploadAt)
        nextUploadAt = start + Double(bytes) / Double(limit)
        return start - t
    }

    /// The upload loop takes block request `block`: its bytes, or nil when it is not to be sent (cancelled, choked,
    /// a chunk this side does not have or may not serve now).
    func blockToServe(_ block: BlockRequest, to key: PeerKey, id: UInt64) -> ByteBuffer? {
        // Popped in place: a copy of the link held across the change would copy the whole upload queue per block.
        guard links[key]?.id == id, let wanted = links[key]?.uploads.pop(block), let link = links[key] else {
            return nil
        }
        if !wanted || link.amChoking { return nil }
        let chunk = Int(block.chunk)
        guard let manifest, let have, have.contains(chunk) else { return nil }
        if let seeder = superSeeder, !seeder.mayServe(chunk, to: key) { return nil }
        let length = manifest.chunks[chunk].length
        guard Int(block.offset) + Int(block.length) <= length else {
            logger.warning("peer asked for a block outside its chunk", metadata: ["peer": "\(key)"])
            dropLink(key, reason: .malformedMessage, fault: true)
            return nil
        }
        if link.cache?.chunk != chunk {
            do {
                var bytes: [UInt8]?
                if let sink { bytes = try sink.readChunk(chunk) }
                if bytes == nil, let store { bytes = try store.readChunk(manifest.chunks[chunk].hash) }
                guard var bytes else { return nil }
                if options.corruptEveryNthUpload > 0 {
                    uploadsSinceCorruption += 1
                    if uploadsSinceCorruption % options.corruptEveryNthUpload == 0 { bytes[bytes.count / 2] ^= 0xFF }
                }
                links[key]?.cache = (chunk, bytes)
            } catch {
                logger.warning("cannot read a chunk to serve", metadata: ["chunk": "\(chunk)", "error": "\(error)"])
                return nil
            }
        }
        guard let cached = links[key]?.cache else { return nil }
        let start = Int(block.offset)
        return cached.bytes.withUnsafeBytes { raw in
            ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: raw[start..<start + Int(block.length)]))
        }
    }
}
