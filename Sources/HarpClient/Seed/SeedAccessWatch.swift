internal import Foundation
public import Logging
public import NextcloudClient
internal import SignalingProtocol
internal import SwarmKit

/// What `get --seed` re-checks while it seeds the files it fetched: a file that gained its own ACL rules stops being
/// seeded and its sidecar is deleted; a file that is gone or changed on the server stops being seeded (its swarm is
/// for a version the server no longer has).
public actor SeedAccessWatch {
    let client: NextcloudClient
    let node: SwarmNode
    let logger: Logger
    /// Hears every file that stops being seeded, with why.
    let stoppedSeeding: @Sendable (_ path: String, _ reason: String) -> Void
    private var stopped: Set<String> = []

    /// A watch over the swarms of `node`; `stoppedSeeding` hears every file that stops being seeded.
    public init(
        client: NextcloudClient, node: SwarmNode, logger: Logger,
        stoppedSeeding: @escaping @Sendable (_ path: String, _ reason: String) -> Void
    ) {
        self.client = client
        self.node = node
        self.logger = logger
        self.stoppedSeeding = stoppedSeeding
    }

    /// Re-checks the seeded files with one Depth 1 PROPFIND per folder, not one per file: `get -R --seed` of
    /// thousands of files would otherwise ask the server thousands of times every 30 s.
    public func check(_ reports: [FetchReport]) async {
        let watched = reports.filter { !stopped.contains($0.remotePath) && $0.swarmID != nil }
        let folders = Dictionary(grouping: watched) { SidecarFolder.parent(of: $0.remotePath) }
        for (folder, group) in folders.sorted(by: { $0.key < $1.key }) {
            let current: [String: DAVItem]
            do {
                let listing = try await client.list(folder)
                current = Dictionary(listing.children.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
            } catch let error as NextcloudError where error.kind == .notFoundOrNoAccess || error.kind == .forbidden {
                current = [:]
            } catch {
                logger.info("could not re-check seeded files", metadata: ["folder": "\(folder)", "error": "\(error)"])
                continue
            }
            for report in group {
                guard let reason = await reason(toStop: report, now: current[report.remotePath]) else { continue }
                guard let swarmID = report.swarmID, let id = PublicKey32(bytes: swarmID) else { continue }
                stopped.insert(report.remotePath)
                await node.close(id)
                stoppedSeeding(report.remotePath, reason)
            }
        }
    }

    /// Why a fetched file must no longer be seeded, given what its folder lists now (nil: it may go on).
    private func reason(toStop report: FetchReport, now item: DAVItem?) async -> String? {
        guard let item else { return "the file is gone or no longer readable" }
        if item.hasACLList {
            let sidecars = SidecarFolder(client: client, logger: logger)
            let deleted = await item.fileID.asyncMap { await sidecars.remove(forFileAt: item.path, fileID: String($0)) }
            return "the file gained its own access rules"
                + (deleted == true ? " (sidecar deleted)" : " (its sidecar could not be deleted)")
        }
        if let etag = item.etag, let fetched = report.etag, etag != fetched { return "the file changed on the server" }
        return nil
    }
}

extension Optional {
    fileprivate func asyncMap<T>(_ transform: (Wrapped) async -> T) async -> T? {
        guard let self else { return nil }
        return await transform(self)
    }
}
