import ChunkStore
import Foundation
import HarpClient
import NextcloudClient
import SwarmKit
import Testing

/// Publishing the sidecars of many files of one folder (seed of a folder of thousands of files).
@Suite("Sidecar publishing (in-process DevCloud)", .serialized)
struct SidecarPublishTests {
    /// `.harp/` is made once for a folder's files, not before every manifest and sidecar (two MKCOL and two PROPFIND
    /// per file before); a `.harp/` removed meanwhile is made again.
    @Test func aFoldersSidecarFolderIsMadeOnce() async throws {
        let cluster = try await Cluster.start()
        let device = try await cluster.device("writer", signalURL: nil)
        let publisher = SidecarPublisher(client: device.client, identity: device.identity, logger: cluster.logger)
        let root = Hash256(bytes: [UInt8](repeating: 9, count: 32))!
        let manifest = try Manifest(parameters: .default, chunks: [ChunkRef(hash: root, length: 10)])
        func publish(_ index: Int) async throws {
            let version = RemoteVersion(fileid: "\(100 + index)", etag: "e\(index)", size: 10, mtime: 1_700_000_000)
            try await publisher.publish(
                .version(version), root: manifest.root, chunking: .default, salt: Sidecar.randomSalt(),
                manifest: manifest, nextTo: "/f\(index).bin")
        }
        let before = cluster.cloud.requestCountsByMethod
        for index in 0..<4 { try await publish(index) }
        let cost = FolderFetchTests.delta(before, cluster.cloud.requestCountsByMethod)
        #expect(cost["MKCOL"] == 1, "requests: \(cost)")
        #expect(cost["PUT"] == 8, "requests: \(cost)")
        #expect((cost["PROPFIND"] ?? 0) == 0, "requests: \(cost)")

        try await device.client.delete("/.harp")
        try await publish(4)
        let (sidecar, _) = await SidecarFolder(client: device.client, logger: cluster.logger).read(
            forFileAt: "/f4.bin", fileID: "104")
        #expect(sidecar?.root == manifest.root)
        await device.node.shutdown()
        await cluster.stop()
    }
}
