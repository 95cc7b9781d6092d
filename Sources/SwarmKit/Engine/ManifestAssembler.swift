public import ChunkStore

/// A manifest received page by page from one peer, bounded by the chunk count the file's size allows, checked before
/// anything is kept (docs/protocol.md §7.2). No I/O.
public struct ManifestAssembler: Sendable {
    /// What a page did to the assembly.
    public enum Outcome: Sendable, Equatable {
        /// Kept; request these pages next (after the first page, every other page).
        case requestPages([UInt32])
        /// Kept; more pages are on their way.
        case waiting
        /// The last page arrived: the manifest, not yet checked against the root.
        case complete([ChunkRef], fileSize: UInt64)
        /// The page does not fit the ones before or the bounds: a fault of the peer.
        case misfit
    }

    public private(set) var source: LinkID?
    public private(set) var startedAt: Double = 0
    private var fileSize: UInt64?
    private var chunkCount: UInt32?
    private var pages: [UInt32: [ManifestEntry]] = [:]

    public init() {}

    /// Whether a manifest is being asked for.
    public var isActive: Bool { source != nil }

    /// Starts asking `link` (page 0 first).
    public mutating func start(from link: LinkID, at now: Double) {
        self = ManifestAssembler()
        source = link
        startedAt = now
    }

    /// Gives up the current source.
    public mutating func abandon() { self = ManifestAssembler() }

    /// The number of pages of a manifest of `chunkCount` chunks.
    public static func pageCount(chunkCount: Int) -> Int {
        let perPage = WireLimits.maxManifestPageEntries
        return max(1, (chunkCount + perPage - 1) / perPage)
    }

    /// Takes one page. `maxChunks` is the most chunks the announced size allows; `expectedSize` the size the caller
    /// expects, if known.
    public mutating func receive(_ page: ManifestPage, maxChunks: Int, expectedSize: UInt64?) -> Outcome {
        let perPage = WireLimits.maxManifestPageEntries
        let expectedPages = Self.pageCount(chunkCount: Int(page.chunkCount))
        guard Int(page.pageCount) == expectedPages, Int(page.chunkCount) <= maxChunks,
            expectedSize.map({ $0 == page.fileSize }) ?? true,
            fileSize.map({ $0 == page.fileSize }) ?? true,
            chunkCount.map({ $0 == page.chunkCount }) ?? true,
            Int(page.page) < expectedPages, pages[page.page] == nil,
            page.entries.count == min(perPage, Int(page.chunkCount) - Int(page.page) * perPage)
        else { return .misfit }
        let first = fileSize == nil
        fileSize = page.fileSize
        chunkCount = page.chunkCount
        pages[page.page] = page.entries
        guard pages.count == expectedPages else {
            return first ? .requestPages((1..<UInt32(expectedPages)).map { $0 }) : .waiting
        }
        var chunks: [ChunkRef] = []
        chunks.reserveCapacity(Int(page.chunkCount))
        for index in 0..<UInt32(expectedPages) {
            for entry in pages[index] ?? [] {
                chunks.append(ChunkRef(hash: Hash256(bytes: entry.hash)!, length: Int(entry.length)))
            }
        }
        let size = page.fileSize
        self = ManifestAssembler()
        return .complete(chunks, fileSize: size)
    }

    /// Page `page` of `manifest`, as sent to a peer.
    public static func page(_ page: Int, of manifest: Manifest) -> ManifestPage {
        let perPage = WireLimits.maxManifestPageEntries
        let slice = manifest.chunks[
            min(page * perPage, manifest.chunks.count)..<min((page + 1) * perPage, manifest.chunks.count)]
        return ManifestPage(
            page: UInt32(page), pageCount: UInt32(pageCount(chunkCount: manifest.chunks.count)),
            fileSize: UInt64(manifest.size), chunkCount: UInt32(manifest.chunks.count),
            entries: slice.map { ManifestEntry(hash: $0.hash.bytes, length: UInt32($0.length)) })
    }
}

/// The manifest, both ways: asking a peer for it and serving it.
extension SwarmEngine {
    /// The most chunks a version of `size` bytes can have with this swarm's chunking: every chunk but the last of each
    /// file is at least `chunking.minSize` long (a folder's bundle has `options.filesInVersion` files). Never above
    /// `Manifest.maxChunkCount`, whatever the size and parameters say.
    public func chunkCountBound(size: UInt64) -> Int {
        let minSize = UInt64(max(chunking.minSize, 1))
        let files = UInt64(max(options.filesInVersion, 1))
        let bound = files == 1 ? size / minSize + (size % minSize == 0 ? 0 : 1) : size / minSize + files
        return Int(min(bound, UInt64(Manifest.maxChunkCount)))
    }

    /// The most chunks the version can have, before its manifest is known: from the expected size when there is
    /// one, else the protocol's limit.
    public var chunkCountBound: Int {
        expectedSize.map { chunkCountBound(size: UInt64(max($0, 0))) } ?? Manifest.maxChunkCount
    }

    mutating func requestManifest(from link: LinkID) {
        guard manifest == nil, !manifestAssembler.isActive, links[link] != nil else { return }
        manifestAssembler.start(from: link, at: now)
        send(.manifestRequest(page: 0), to: link)
    }

    /// A peer asked for a page: queue it for the upload loop, which sends one page at a time and waits until it is
    /// written. A page that does not exist, or more requests waiting than the manifest has pages, is a fault.
    mutating func queuePage(_ page: Int, from link: LinkID) {
        guard let manifest, links[link] != nil else { return }
        let pageCount = ManifestAssembler.pageCount(chunkCount: manifest.chunks.count)
        guard page < pageCount else {
            log(.warning, "peer asked for a manifest page that does not exist", ["peer": peerName(link)])
            return drop(link, reason: .malformedMessage, fault: true)
        }
        do {
            try links[link]?.uploads.pushPage(pageCount: pageCount)
        } catch {
            log(.warning, "peer asked for more manifest pages than there are", ["peer": peerName(link)])
            return drop(link, reason: .malformedMessage, fault: true)
        }
        emit(.queueUpload(link, .manifestPage(page)))
    }

    mutating func receivePage(_ page: ManifestPage, from link: LinkID) {
        guard manifest == nil, manifestAssembler.source == link else { return }
        let outcome = manifestAssembler.receive(
            page, maxChunks: chunkCountBound(size: page.fileSize), expectedSize: expectedSize.map { UInt64(max($0, 0)) }
        )
        switch outcome {
        case .misfit:
            log(.warning, "peer sent a manifest page that does not fit", ["peer": peerName(link)])
            drop(link, reason: .malformedMessage, fault: true)
        case .requestPages(let pages):
            send(pages.map { .manifestRequest(page: $0) }, to: link)
        case .waiting:
            break
        case .complete(let chunks, let fileSize):
            do {
                let candidate = try Manifest(parameters: chunking, chunks: chunks)
                guard UInt64(candidate.size) == fileSize else {
                    throw ChunkStoreError.manifestMismatch("size differs from the pages' header")
                }
                try candidate.verify(root: root)
                install(candidate)
                log(.info, "manifest received and verified", ["peer": peerName(link), "chunks": "\(chunks.count)"])
                if manifestDeadline != nil {
                    manifestDeadline = nil
                    emit(.manifestReady)
                }
            } catch {
                log(.warning, "peer sent a manifest that does not match the content root", ["peer": peerName(link)])
                drop(link, reason: .badChunk, fault: true)
            }
        }
    }

    mutating func install(_ manifest: Manifest) {
        self.manifest = manifest
        if have == nil { have = ChunkSet(count: manifest.chunks.count) }
        for link in order { applyAnnouncements(link) }
    }

    /// Waiting for the manifest: ask another peer when the current one does not answer, give up at the deadline.
    mutating func tickManifest() {
        guard manifest == nil else { return }
        if let deadline = manifestDeadline, now > deadline { return fail(.noManifest) }
        if manifestAssembler.isActive, now - manifestAssembler.startedAt > 5 {
            let silent = manifestAssembler.source
            manifestAssembler.abandon()
            if let other = order.first(where: { $0 != silent }) { requestManifest(from: other) }
        } else if !manifestAssembler.isActive, let any = order.first {
            requestManifest(from: any)
        }
    }
}
