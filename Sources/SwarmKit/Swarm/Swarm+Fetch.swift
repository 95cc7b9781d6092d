public import ChunkStore
internal import NIOPosix

/// Where a fetch stands, for the caller waiting in `fetch`.
struct FetchProgress: Sendable {
    enum Milestone: Sendable { case manifest, finished }
    var manifestReady = false
    var finished = false
    var failure: EngineFailure?

    func reached(_ milestone: Milestone) -> Bool {
        switch milestone {
        case .manifest: manifestReady
        case .finished: finished
        }
    }
}

/// Work the engine hands out during a fetch, done in the fetch's own task group.
enum FetchJob: Sendable {
    /// Verify and write a chunk.
    case write(chunk: Int, bytes: ChunkBytes, from: ChunkSource)
    /// Ask the server for a range; `cancel` yields when the engine no longer wants it.
    case range(chunk: Int, offset: Int64, length: Int, cancel: AsyncStream<Void>)
}

/// Fetching: waiting for the manifest, opening the download, and the writes and server requests, each a child task of
/// the fetch; hashing and writing run on NIO's thread pool.
extension Swarm {
    /// Fetches the version: waits for a manifest (known locally or from a peer), opens the download through
    /// `target`, copies local chunks, then fetches the rest from peers and the web seed until every chunk is
    /// verified and written. Returns the manifest; the caller compares with the server, finishes the download and
    /// renames.
    ///
    /// - Throws: `SwarmError.noManifest` when no peer gave one in time, `SwarmError.changedOnServer` when the web seed
    ///   found a new etag, `SwarmError.noSources` when nothing can make progress, a `ChunkStoreError` from the disk.
    public func fetch(_ target: FetchTarget, knownManifest: Manifest? = nil) async throws -> Manifest {
        webSeed = options.useServer ? target.webSeed : nil
        start()
        if let knownManifest { try knownManifest.verify(root: root) }
        progress = FetchProgress()
        feed(.fetch(manifest: knownManifest, server: webSeed != nil))
        try await wait(until: .manifest)
        guard let manifest = engine.manifest else { throw SwarmError.noManifest }
        let sink = try await NIOThreadPool.singleton.runIfActive { try target.openSink(manifest) }
        self.sink = sink
        let (have, localBytes) = try await NIOThreadPool.singleton.runIfActive {
            () throws -> (ChunkSet, Int64) in
            let missingBefore = Set(sink.missing)
            _ = try sink.adoptLocalChunks()
            var have = ChunkSet(count: manifest.chunks.count, full: true)
            for index in sink.missing { have.remove(index) }
            let local = missingBefore.filter { have.contains($0) }.reduce(Int64(0)) {
                $0 + Int64(manifest.chunks[$1].length)
            }
            return (have, local)
        }
        let (jobs, jobSink) = AsyncStream.makeStream(of: FetchJob.self)
        self.jobs = jobSink
        defer {
            self.jobs = nil
            for cancel in rangeCancels.values { cancel.finish() }
            rangeCancels.removeAll()
            serverBytes.removeAll()
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.runJobs(jobs, sink: sink) }
            defer {
                jobSink.finish()
                group.cancelAll()
            }
            feed(.opened(have: have, localBytes: localBytes))
            try await wait(until: .finished)
        }
        try await NIOThreadPool.singleton.runIfActive { try sink.flush() }
        return manifest
    }

    /// After the download was finished and renamed: serve from the store (the indexed file) from now on. Returns
    /// whether the swarm now super-seeds (no connected peer held some of the chunks: the caller's node then tells
    /// newcomers so in `hello`, `SwarmNode.superSeeding`).
    @discardableResult
    public func fetchFinished(store: ChunkStore) -> Bool {
        self.store = store
        self.sink = nil
        versionReader = nil  // the version is indexed now: its file is looked up again
        feed(.fetchFinished)
        return engine.superSeeder != nil
    }

    // MARK: Waiting

    func reached(_ milestone: FetchProgress.Milestone) {
        switch milestone {
        case .manifest: progress.manifestReady = true
        case .finished: progress.finished = true
        }
        resumeWaiter()
    }

    func resumeWaiter() {
        guard let waiter else { return }
        if let failure = progress.failure {
            self.waiter = nil
            waiter.continuation.resume(throwing: SwarmError(failure, storage: storageError))
        } else if progress.reached(waiter.until) {
            self.waiter = nil
            waiter.continuation.resume()
        }
    }

    /// Waits until the engine reports `milestone` (or fails, or the task is cancelled).
    private func wait(until milestone: FetchProgress.Milestone) async throws {
        if let failure = progress.failure { throw SwarmError(failure, storage: storageError) }
        if progress.reached(milestone) { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                } else {
                    waiter = (milestone, continuation)
                }
            }
        } onCancel: {
            Task { await self.cancelWaiter() }
        }
    }

    private func cancelWaiter() {
        guard let waiter else { return }
        self.waiter = nil
        waiter.continuation.resume(throwing: CancellationError())
    }

    // MARK: Jobs

    func store(_ chunk: Int, from source: ChunkSource) {
        let bytes: ChunkBytes?
        switch source {
        case .peer(let link):
            bytes = assemblies.removeValue(forKey: AssemblyKey(link: link, chunk: chunk))?.complete.map { .blocks($0) }
        case .server: bytes = serverBytes.removeValue(forKey: chunk).map { .array($0) }
        }
        guard let bytes, let jobs else { return feed(.rejected(chunk: chunk, from: source)) }
        jobs.yield(.write(chunk: chunk, bytes: bytes, from: source))
    }

    func requestRange(_ chunk: Int, offset: Int64, length: Int) {
        guard let jobs else { return feed(.serverFailed(chunk: chunk, .transient("no fetch is running"))) }
        let (cancel, cancelSink) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        rangeCancels[chunk] = cancelSink
        jobs.yield(.range(chunk: chunk, offset: offset, length: length, cancel: cancel))
    }

    /// Runs every job as a child task until the fetch ends.
    private nonisolated func runJobs(_ jobs: AsyncStream<FetchJob>, sink: DownloadSink) async {
        await withDiscardingTaskGroup { group in
            for await job in jobs {
                switch job {
                case .write(let chunk, let bytes, let source):
                    group.addTask { await self.write(chunk, bytes: bytes, from: source, to: sink) }
                case .range(let chunk, let offset, let length, let cancel):
                    guard let webSeed = await self.webSeed else { continue }
                    group.addTask {
                        await self.fetchRange(chunk, offset: offset, length: length, from: webSeed, cancel: cancel)
                    }
                }
            }
            group.cancelAll()
        }
    }

    private nonisolated func write(
        _ chunk: Int, bytes: ChunkBytes, from source: ChunkSource, to sink: DownloadSink
    )
        async
    {
        let result: Result<Void, ChunkStoreError>
        do {
            result = try await NIOThreadPool.singleton.runIfActive { () -> Result<Void, ChunkStoreError> in
                bytes.withSegments { segments in
                    Result { () throws(ChunkStoreError) in _ = try sink.write(index: chunk, segments: segments) }
                }
            }
        } catch {
            return  // the pool is shutting down: the process is ending
        }
        await written(chunk, from: source, result)
    }

    private func written(_ chunk: Int, from source: ChunkSource, _ result: Result<Void, ChunkStoreError>) {
        switch result {
        case .success: feed(.stored(chunk: chunk, from: source))
        case .failure(.chunkMismatch): feed(.rejected(chunk: chunk, from: source))
        case .failure(let error):
            storageError = error
            feed(.storageFailed("\(error)"))
        }
    }

    /// One server request, raced against its cancel signal.
    private nonisolated func fetchRange(
        _ chunk: Int, offset: Int64, length: Int, from webSeed: any WebSeed, cancel: AsyncStream<Void>
    ) async {
        let result: Result<[UInt8], any Error>? = await withTaskGroup(of: Result<[UInt8], any Error>?.self) { race in
            race.addTask {
                do {
                    return .success(try await webSeed.fetch(offset: offset, length: length))
                } catch {
                    return .failure(error)
                }
            }
            race.addTask {
                var signal = cancel.makeAsyncIterator()
                _ = await signal.next()
                return nil
            }
            let first = await race.next() ?? nil
            race.cancelAll()
            return first
        }
        guard let result else { return }  // cancelled: the engine already forgot it
        await serverAnswered(chunk, result)
    }

    private func serverAnswered(_ chunk: Int, _ result: Result<[UInt8], any Error>) {
        guard rangeCancels.removeValue(forKey: chunk) != nil else { return }
        switch result {
        case .success(let bytes):
            serverBytes[chunk] = bytes
            feed(.serverDone(chunk: chunk))
        case .failure(let error):
            let failure: ServerFailure
            switch error {
            case WebSeedError.changed: failure = .changed
            case WebSeedError.refused(let why): failure = .refused(why)
            case is CancellationError: return
            default: failure = .transient("\(error)")
            }
            feed(.serverFailed(chunk: chunk, failure))
        }
    }
}
