internal import Foundation
internal import NextcloudClient

/// The files of one `get`, fetched by a bounded pool of workers: up to `parallel` files at once, each worker taking
/// the next file of the list as soon as its own is done, so requests stay in flight across files (a folder of small
/// files costs one request each, and the server sees `parallel` of them at any moment, not one after the other).
///
/// `defaultParallel` is what DevCloud sustains on this machine (docs/benchmarks.md, "Many small files from the
/// server"): the files/s of `get -R` of 2,000 × 64 KiB stops growing there.
public struct FetchQueue: Sendable {
    /// Files fetched at once when neither `--parallel` nor `limits.parallel_files` says otherwise.
    public static let defaultParallel = 8
    /// How often one file is listed again and fetched as it is now after it changed on the server (412).
    public static let relistLimit = 2

    let fetcher: FileFetcher
    let client: NextcloudClient
    let parallel: Int

    /// A queue fetching with `fetcher`, up to `parallel` files at once (at least 1).
    public init(fetcher: FileFetcher, parallel: Int = FetchQueue.defaultParallel) {
        self.fetcher = fetcher
        self.client = fetcher.client
        self.parallel = max(1, parallel)
    }

    /// Fetches every job; `finished` is called once per job, in the order they end, never concurrently, with its
    /// remote path and its report or error. One file's failure does not stop the others.
    public func run(
        _ jobs: [FetchJob], finished: (_ path: String, _ result: Result<FetchReport, any Error>) -> Void
    ) async {
        // The children hand their results over through `outcomes`, not as the group's element: a payload-carrying
        // task group crashed in the concurrency runtime in release builds (a tuple copied while the group's waiting
        // task was resumed), and a Void group sidesteps that.
        let outcomes = OutcomeQueue()
        await withTaskGroup(of: Void.self) { group in
            var pending = jobs.makeIterator()
            func addNext() {
                guard let job = pending.next() else { return }
                group.addTask {
                    do {
                        outcomes.push(job.remotePath, .success(try await fetchCurrentVersion(job)))
                    } catch {
                        outcomes.push(job.remotePath, .failure(error))
                    }
                }
            }
            for _ in 0..<parallel { addNext() }
            for await _ in group {
                for (path, result) in outcomes.drain() {
                    finished(path, result)
                    addNext()
                }
            }
        }
    }

    /// Fetches `job`. When the file changed on the server after it was listed (its `If-Match` failed: 412), that one
    /// file is listed again and the version it has now is fetched, with a note, up to `relistLimit` times; a file that
    /// is gone by then fails with the listing's error. The listed etag is never taken for other bytes: a report's
    /// `etag` is the version whose bytes were written.
    public func fetchCurrentVersion(_ job: FetchJob) async throws -> FetchReport {
        var job = job
        var notes: [String] = []
        var relisted = 0
        while true {
            do {
                var report = try await fetcher.fetch(job)
                report.notes = notes + report.notes
                return report
            } catch FetchError.changedOnServer {
                guard case .finished(let listed) = job.source, relisted < Self.relistLimit else {
                    throw FetchError.changedOnServer
                }
                relisted += 1
                let current = try await client.item(at: listed.path)
                guard !current.isFolder else { throw FetchError.changedOnServer }
                notes.append(
                    "the file changed on the server after it was listed (etag \(listed.etag ?? "?") is now "
                        + "\(current.etag ?? "?")): fetched the version it has now")
                job.source = .finished(current)
            }
        }
    }
}

/// Results of finished fetches, handed from the children of a task group to its body.
final class OutcomeQueue: @unchecked Sendable {
    // @unchecked: `items` is only read and written under `lock`.
    private let lock = NSLock()
    private var items: [(String, Result<FetchReport, any Error>)] = []

    func push(_ path: String, _ result: Result<FetchReport, any Error>) {
        lock.withLock { items.append((path, result)) }
    }

    func drain() -> [(String, Result<FetchReport, any Error>)] {
        lock.withLock {
            defer { items.removeAll() }
            return items
        }
    }
}
