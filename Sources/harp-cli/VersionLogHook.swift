import ChunkStore
import Foundation
import HarpClient
import Logging
import NextcloudClient
import SwarmKit
import Synchronization

/// What `put`, `get` and `seed` do with the version log (docs/proofs.md): one call each, after their transfers.
/// A log that is down or refuses never fails a transfer: the command warns (standard error, or a `versionLog` field /
/// `version-log` event with `--json`) and goes on.
struct VersionLogHook: Sendable {
    let recorder: VersionRecorder
    let enabled: Bool
    let json: Bool
    let quiet: Bool
    /// Paths (relative to the seeded folder) that `seed` began to seed since the last `recordSeeded`.
    private let seeded = SeededPaths()
    /// How many times each warning was met.
    private let warned = WarningCounts()

    init(
        signalURL: String?, client: NextcloudClient, identity: DeviceIdentity, logger: Logger, json: Bool, quiet: Bool
    ) {
        recorder = VersionRecorder(signalURL: signalURL, client: client, identity: identity, logger: logger)
        enabled = signalURL != nil
        self.json = json
        self.quiet = quiet
    }

    /// After `put` uploaded `path`: appends its version; returns the `versionLog` field of the `file-done` line.
    func uploaded(_ path: String, root: Hash256, size: Int64) async -> Any {
        guard enabled else { return NSNull() }
        return report(path, await recorder.recordUpload(remotePath: path, root: root, size: size))
    }

    /// After `put` uploaded a small file of a folder with one PUT whose answer named its fileid and etag: appends its
    /// version without asking Nextcloud. Safe to call from several tasks at once.
    func uploadedSmall(_ upload: FileUploader.SmallOutcome) async -> VersionRecorder.Result? {
        guard enabled else { return nil }
        return await recorder.recordUpload(
            remotePath: upload.remote, fileID: upload.fileID, etag: upload.etag, root: upload.root, size: upload.size)
    }

    /// The `versionLog` field for `result` (from `uploadedSmall`), after warning about it.
    func report(_ path: String, _ result: VersionRecorder.Result?) -> Any {
        guard let result else { return NSNull() }
        warn(path, result)
        return result.json
    }

    /// After `get` fetched files: records the versions the log does not know as `observed`. The fileid comes from
    /// the job's listing and the etag from the fetch, so nothing more is asked of Nextcloud; four files at a time.
    func fetched(_ reports: [FetchReport], jobs: [FetchJob]) async {
        guard enabled else { return }
        var fileIDs: [String: Int64] = [:]
        for job in jobs {
            if case .finished(let item) = job.source, let id = item.fileID { fileIDs[item.path] = id }
        }
        let recorder = self.recorder
        var results: [(String, VersionRecorder.Result)] = []
        await withTaskGroup(of: (String, VersionRecorder.Result).self) { group in
            var next = reports.makeIterator()
            func addNext() {
                guard let report = next.next() else { return }
                let fileID = fileIDs[report.remotePath]
                group.addTask {
                    let result = await recorder.recordObserved(
                        remotePath: report.remotePath, fileID: fileID, root: report.root, size: report.size,
                        etag: report.etag)
                    return (report.remotePath, result)
                }
            }
            for _ in 0..<4 { addNext() }
            for await result in group {
                results.append(result)
                addNext()
            }
        }
        for (path, result) in results {
            if json { printJSONLine(["event": "version-log", "path": path].merging(result.json) { a, _ in a }) }
            warn(path, result)
        }
    }

    /// Notes a file `seed` began to seed (called from its event handler, synchronously).
    func note(_ event: FolderSeeder.Event) {
        guard enabled, case .seeding(let path, _, _, _) = event else { return }
        seeded.add(path)
    }

    /// After a scan of `seed`: records the versions of the files it began to seed that the log does not know, from
    /// their provenance records (the version of the server that the local bytes were established to be).
    func recordSeeded(store: ChunkStore, localRoot: String, remoteRoot: String) async {
        for relative in seeded.take() {
            guard let provenance = try? store.provenance(path: localRoot + "/" + relative) else { continue }
            let remotePath = (remoteRoot == "/" ? "" : remoteRoot) + "/" + relative
            let result = await recorder.recordObserved(
                remotePath: remotePath, fileID: Int64(provenance.server.fileid), root: provenance.root,
                size: provenance.server.size, etag: provenance.server.etag)
            if json { printJSONLine(["event": "version-log", "path": remotePath].merging(result.json) { a, _ in a }) }
            warn(remotePath, result)
        }
    }

    /// Warns on standard error for the first file of each reason; the files after it that failed for the same reason
    /// are not listed one by one (a log that cannot enroll this device refuses every file of a folder alike).
    private func warn(_ path: String, _ result: VersionRecorder.Result) {
        guard !json, let warning = result.warning else { return }
        switch warned.note(warning) {
        case 1: printError("harp-cli: warning: \(path): not recorded in the version log: \(warning)")
        case 2:
            printError(
                "harp-cli: warning: further files not recorded in the version log for that reason are not listed")
        default: break
        }
    }
}

/// The paths `seed` reported as newly seeded, handed from its synchronous event handler to the scan loop; at most
/// `limit` are kept between two scans (a scan reports each file once).
final class SeededPaths: Sendable {
    private let paths = Mutex<[String]>([])
    let limit = 100_000

    func add(_ path: String) {
        paths.withLock { if $0.count < limit { $0.append(path) } }
    }

    func take() -> [String] {
        paths.withLock { paths in
            defer { paths.removeAll() }
            return paths
        }
    }
}

/// How many times each warning text was met (at most `limit` texts are kept).
final class WarningCounts: Sendable {
    private let counts = Mutex<[String: Int]>([:])
    let limit = 64

    /// Counts `warning` once more and returns its count (1 the first time); past `limit` texts, new ones count as 1.
    func note(_ warning: String) -> Int {
        counts.withLock { counts in
            guard counts[warning] != nil || counts.count < limit else { return 1 }
            counts[warning, default: 0] += 1
            return counts[warning]!
        }
    }
}
