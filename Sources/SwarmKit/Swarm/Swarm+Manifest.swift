internal import ChunkStore

/// The manifest, both ways: serving its pages to peers (one page in flight per peer, requests bounded by the page
/// count) and assembling it from one peer's pages (bounded by the chunk count the file's size allows, checked before
/// anything is kept).
extension Swarm {
    /// The most chunks a version of `size` bytes can have with this swarm's chunking: every chunk but the last is at
    /// least `chunking.minSize` long. Never above `Manifest.maxChunkCount`, whatever the size and parameters say.
    func chunkCountBound(size: UInt64) -> Int {
        let minSize = UInt64(max(chunking.minSize, 1))
        let bound = size / minSize + (size % minSize == 0 ? 0 : 1)
        return Int(min(bound, UInt64(Manifest.maxChunkCount)))
    }

    /// The most chunks the version being fetched can have, before its manifest is known: from the expected size
    /// when there is one, else the protocol's limit.
    var chunkCountBound: Int {
        expectedSize.map { chunkCountBound(size: UInt64(max($0, 0))) } ?? Manifest.maxChunkCount
    }

    func requestManifest(from key: PeerKey) {
        guard manifest == nil, manifestAssembly == nil, links[key] != nil else { return }
        manifestAssembly = ManifestAssembly(source: key, startedAt: now)
        send(.manifestRequest(page: 0), to: key)
    }

    /// The number of pages of `manifest`.
    static func pageCount(of manifest: Manifest) -> Int {
        let perPage = WireLimits.maxManifestPageEntries
        return max(1, (manifest.chunks.count + perPage - 1) / perPage)
    }

    /// A peer asked for a page: queue it for the upload loop, which sends one page at a time and waits until it is
    /// written. A page that does not exist, or more requests waiting than the manifest has pages, is a fault.
    func queuePage(_ page: Int, from key: PeerKey) {
        guard let manifest, var link = links[key] else { return }
        let pageCount = Self.pageCount(of: manifest)
        guard page < pageCount else {
            logger.warning("peer asked for a manifest page that does not exist", metadata: ["peer": "\(key)"])
            return dropLink(key, reason: .malformedMessage, fault: true)
        }
        do {
            try link.uploads.pushPage(pageCount: pageCount)
        } catch {
            logger.warning("peer asked for more manifest pages than there are", metadata: ["peer": "\(key)"])
            return dropLink(key, reason: .malformedMessage, fault: true)
        }
        links[key] = link
        link.requests.yield(.manifestPage(page))
    }

    /// The upload loop takes a page request: the page's message, or nil when the link is gone.
    func pageToServe(_ page: Int, to key: PeerKey, id: UInt64) -> WireMessage? {
        guard var link = links[key], link.id == id, let manifest else { return nil }
        link.uploads.popPage()
        links[key] = link
        let perPage = WireLimits.maxManifestPageEntries
        let slice = manifest.chunks[
            min(page * perPage, manifest.chunks.count)..<min((page + 1) * perPage, manifest.chunks.count)]
        let entries = slice.map { ManifestEntry(hash: $0.hash.bytes, length: UInt32($0.length)) }
        return .manifestPage(
            ManifestPage(
                page: UInt32(page), pageCount: UInt32(Self.pageCount(of: manifest)), fileSize: UInt64(manifest.size),
                chunkCount: UInt32(manifest.chunks.count), entries: entries))
    }

    func receivePage(_ page: ManifestPage, from key: PeerKey) {
        guard manifest == nil, var assembly = manifestAssembly, assembly.source == key else { return }
        let perPage = WireLimits.maxManifestPageEntries
        let expectedPages = max(1, (Int(page.chunkCount) + perPage - 1) / perPage)
        // The chunk count is checked against what the size allows before any page is kept (docs/protocol.md §7.2).
        guard Int(page.pageCount) == expectedPages, Int(page.chunkCount) <= chunkCountBound(size: page.fileSize),
            expectedSize.map({ UInt64(max($0, 0)) == page.fileSize }) ?? true,
            assembly.fileSize.map({ $0 == page.fileSize }) ?? true,
            assembly.chunkCount.map({ $0 == page.chunkCount }) ?? true,
            Int(page.page) < expectedPages, assembly.pages[page.page] == nil,
            page.entries.count == min(perPage, Int(page.chunkCount) - Int(page.page) * perPage)
        else {
            logger.warning("peer sent a manifest page that does not fit", metadata: ["peer": "\(key)"])
            return dropLink(key, reason: .malformedMessage, fault: true)
        }
        let first = assembly.fileSize == nil
        assembly.fileSize = page.fileSize
        assembly.chunkCount = page.chunkCount
        assembly.pages[page.page] = page.entries
        manifestAssembly = assembly
        if first {
            let requests = (1..<max(expectedPages, 1)).map { WireMessage.manifestRequest(page: UInt32($0)) }
            guard send(requests, to: key) else { return }
        }
        guard assembly.pages.count == expectedPages else { return }
        var chunks: [ChunkRef] = []
        chunks.reserveCapacity(Int(page.chunkCount))
        for index in 0..<UInt32(expectedPages) {
            for entry in assembly.pages[index] ?? [] {
                chunks.append(ChunkRef(hash: Hash256(bytes: entry.hash)!, length: Int(entry.length)))
            }
        }
        manifestAssembly = nil
        do {
            let candidate = try Manifest(parameters: chunking, chunks: chunks)
            guard chunks.count == Int(page.chunkCount), UInt64(candidate.size) == page.fileSize else {
                throw ChunkStoreError.manifestMismatch("size or count differs from the pages' header")
            }
            try candidate.verify(root: root)
            install(candidate)
            logger.info("manifest received and verified", metadata: ["peer": "\(key)", "chunks": "\(chunks.count)"])
        } catch {
            logger.warning("peer sent a manifest that does not match the content root", metadata: ["peer": "\(key)"])
            dropLink(key, reason: .badChunk, fault: true)
        }
    }

    func install(_ manifest: Manifest) {
        self.manifest = manifest
        if have == nil { have = ChunkSet(count: manifest.chunks.count) }
        for key in links.keys { applyAnnouncements(key) }
    }
}
