import Foundation
import Logging
import NextcloudClient
import Signaling
import SwarmKit

/// What `get --seed` re-checks while it seeds the files it fetched: a file that gained its own ACL rules stops being
/// seeded and its sidecar is deleted; a file that is gone or changed on the server stops being seeded (its swarm is
/// for a version the server no longer has).
actor SeedAccessWatch {
    let client: NextcloudClient
    let node: SwarmNode
    let logger: Logger
    let json: Bool
    private var stopped: Set<String> = []

    init(client: NextcloudClient, node: SwarmNode, logger: Logger, json: Bool) {
        self.client = client
        self.node = node
        self.logger = logger
        self.json = json
    }

    func check(_ reports: [FetchReport]) async {
        for report in reports where !stopped.contains(report.remotePath) {
            guard let swarmID = report.swarmID, let id = PublicKey32(bytes: swarmID) else { continue }
            let reason: String
            do {
                let item = try await client.item(at: report.remotePath)
                if item.hasACLList {
                    let sidecars = SidecarFolder(client: client, logger: logger)
                    let deleted = await item.fileID.asyncMap {
                        await sidecars.remove(forFileAt: item.path, fileID: String($0))
                    }
                    reason =
                        "the file gained its own access rules"
                        + (deleted == true ? " (sidecar deleted)" : " (its sidecar could not be deleted)")
                } else if let etag = item.etag, let fetched = report.etag, etag != fetched {
                    reason = "the file changed on the server"
                } else {
                    continue
                }
            } catch let error as NextcloudError where error.kind == .notFoundOrNoAccess || error.kind == .forbidden {
                reason = "the file is gone or no longer readable"
            } catch {
                logger.info(
                    "could not re-check a seeded file", metadata: ["path": "\(report.remotePath)", "error": "\(error)"])
                continue
            }
            stopped.insert(report.remotePath)
            await node.close(id)
            if json {
                printJSONLine(["event": "unseeded", "path": report.remotePath, "reason": reason])
            } else {
                print("stopped seeding \(report.remotePath): \(reason)")
            }
        }
    }
}

extension Optional {
    fileprivate func asyncMap<T>(_ transform: (Wrapped) async -> T) async -> T? {
        guard let self else { return nil }
        return await transform(self)
    }
}
