internal import CCurl
internal import Foundation

/// A small pool of dedicated threads, each owning one curl easy handle.
///
/// `curl_easy_perform` blocks, so it must never run on Swift's cooperative thread pool. Each
/// worker takes jobs from a queue and runs them with its own easy handle; `curl_easy_reset`
/// between jobs keeps the handle's connection cache, so consecutive requests to the same
/// server reuse the connection (and TLS session). Threads are started on demand up to
/// `maximumThreads` and end when the pool is shut down.
final class TransferWorkers: @unchecked Sendable {
    // @unchecked: every mutable property below is read and written only while `condition`
    // is locked; the easy handles never leave their worker thread.
    typealias Job = @Sendable (UnsafeMutableRawPointer) -> Void

    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var threadCount = 0
    private var idleCount = 0
    private var isShutDown = false
    private let maximumThreads: Int

    init(maximumThreads: Int) {
        self.maximumThreads = max(1, maximumThreads)
        CurlGlobal.initialize()
    }

    /// Queues a job; it runs on a worker thread with that worker's easy handle.
    func submit(_ job: @escaping Job) {
        condition.lock()
        jobs.append(job)
        let spawn = jobs.count > idleCount && threadCount < maximumThreads && !isShutDown
        if spawn { threadCount += 1 }
        condition.signal()
        condition.unlock()
        if spawn {
            let thread = Thread { [self] in self.runWorker() }
            thread.name = "harp-curl"
            thread.start()
        }
    }

    /// Lets the workers finish the queued jobs and end.
    func shutDown() {
        condition.lock()
        isShutDown = true
        condition.broadcast()
        condition.unlock()
    }

    private func runWorker() {
        guard let handle = curl_easy_init() else {
            condition.lock()
            threadCount -= 1
            condition.unlock()
            return
        }
        defer { curl_easy_cleanup(handle) }
        while let job = nextJob() {
            curl_easy_reset(handle)
            job(handle)
        }
    }

    private func nextJob() -> Job? {
        condition.lock()
        defer { condition.unlock() }
        idleCount += 1
        while jobs.isEmpty && !isShutDown {
            condition.wait()
        }
        idleCount -= 1
        if jobs.isEmpty {
            threadCount -= 1
            return nil
        }
        return jobs.removeFirst()
    }
}

/// `curl_global_init` exactly once per process, before the first easy handle.
enum CurlGlobal {
    private static let once: Void = {
        _ = curl_global_init(harp_curl_global_all())
    }()

    static func initialize() {
        _ = once
    }
}
