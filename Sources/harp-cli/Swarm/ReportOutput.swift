import Foundation
import HarpClient

extension FetchReport {
    /// The `file-done` line of `get --json` (docs/cli.md).
    var json: [String: Any] {
        [
            "event": "file-done", "path": remotePath, "destination": destination, "size": size,
            "swarm": swarmID?.hexString ?? NSNull(), "method": method, "check": check?.json ?? NSNull(),
            "bytesFromPeers": bytesFromPeers,
            "bytesFromServer": bytesFromServer, "bytesFromLocal": bytesFromLocal, "bytesUploaded": bytesUploaded,
            "bytesFromRelayedPeers": bytesFromRelayedPeers, "bytesUploadedRelayed": bytesUploadedRelayed,
            "bytesWasted": bytesWasted, "peersUsed": peersUsed,
            "badChunks": badChunks, "seconds": (seconds * 1000).rounded() / 1000, "notes": notes,
        ]
    }
}

extension ServerComparison.Outcome {
    /// The `check` object of a `file-done` line.
    var json: [String: Any] {
        [
            "mode": mode.rawValue, "bytes": bytes, "requests": requests,
            "seconds": (seconds * 1000).rounded() / 1000, "matches": matches,
        ]
    }
}

extension FolderSeeder.Event {
    /// Prints the event as `seed` does: a JSON line, else a line of text (errors on standard error, the rest only
    /// without `--quiet`).
    func print(json: Bool, quiet: Bool) {
        let object: [String: Any]
        let text: String
        switch self {
        case .seeding(let path, let swarmID, let size, let basis):
            object = [
                "event": "seeding", "path": path, "swarm": swarmID.hexString, "size": size, "basis": basis.rawValue,
            ]
            text = "seeding \(path) (\(formatBytes(size)))"
        case .skipped(let path, let why):
            object = ["event": "skipped", "path": path, "reason": why.reason]
            switch why {
            case .ownAccessRules: text = "not seeding \(path): it has its own access rules (server only)"
            case .cannotPublish: text = "not seeding \(path): no sidecar, and no write access to publish one"
            case .mismatch(let reason): text = "not seeding \(path): \(reason)"
            }
        case .unseeded(let path, false, _):
            object = ["event": "unseeded", "path": path]
            text = "stopped seeding \(path)"
        case .unseeded(let path, true, let deleted):
            object = [
                "event": "unseeded", "path": path, "reason": "the file gained its own access rules",
                "sidecarDeleted": deleted,
            ]
            text =
                "stopped seeding \(path): it gained its own access rules"
                + (deleted ? " (sidecar deleted)" : " (its sidecar could not be deleted)")
        case .error(nil, let message):
            object = ["event": "error", "message": message]
            text = "harp-cli: \(message)"
        case .error(let path?, let message):
            object = ["event": "error", "path": path, "message": message]
            text = "harp-cli: \(path): \(message)"
        }
        if json {
            printJSONLine(object)
        } else if case .error = self {
            printError(text)
        } else if !quiet {
            Swift.print(text)
        }
    }
}
