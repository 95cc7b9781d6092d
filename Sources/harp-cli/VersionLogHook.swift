import ChunkStore
import Foundation
import HarpClient
import Logging
import NextcloudClient
import SwarmKit

/// What `put`, `get` and `seed` do with the version log (docs/proofs.md): one call each, after their transfers.
/// A log that is down or refuses never fails a transfer: the command warns (standard error, or a `versionLog` field /
/// `version-log` event with `--json`) and goes on.
struct VersionLogHook {
    let recorder: VersionRecorder
    let enabled: Bool
    let json: Bool
    let quiet: Bool

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
        let result = await recorder.recordUpload(remotePath: path, root: root, size: size)
        warn(path, result)
        return result.json
    }

    /// After `get` fetched files: records the versions the log does not know as `observed`.
    func fetched(_ reports: [FetchReport]) async {
        guard enabled else { return }
        for report in reports {
            let result = await recorder.recordObserved(
                remotePath: report.remotePath, root: report.root, size: report.size, etag: report.etag)
            if json {
                printJSONLine(["event": "version-log", "path": report.remotePath].merging(result.json) { a, _ in a })
            }
            warn(report.remotePath, result)
        }
    }

    private func warn(_ path: String, _ result: VersionRecorder.Result) {
        guard !json, let warning = result.warning else { return }
        printError("harp-cli: warning: \(path): not recorded in the version log: \(warning)")
    }
}
