import ChunkStore
import Foundation
import NextcloudClient
import SwarmKit
import Testing

@testable import HarpClient

/// `FolderBundlePublisher`: a writer's bundle lists its own small files and the current entries of the bundle already
/// there; an entry for a file it holds is always its own (a wrong root written by another device is replaced); a
/// bundle that already lists exactly these files is kept.
@Suite("Folder bundle publisher (in-process DevCloud)")
struct FolderBundlePublisherTests {
    @Test func aWriterKeepsOthersCurrentEntriesAndReplacesAWrongOne() async throws {
        let cluster = try await Cluster.start()
        let client = cluster.client()
        _ = try await client.makeFolder("/F")
        let a = try cluster.makeFile("a.bin", count: 30_000, seed: 1)
        let b = try cluster.makeFile("b.bin", count: 40_000, seed: 2)
        _ = try await client.upload(Data(a.bytes), to: "/F/a.bin")
        _ = try await client.upload(Data(b.bytes), to: "/F/b.bin")
        var listing: [String: DAVItem] = [:]
        for name in ["a.bin", "b.bin"] { listing[name] = try await client.item(at: "/F/" + name) }

        // Another device lists a.bin as it is and b.bin with other bytes (a modified copy) under the server's etag.
        let other = try await cluster.device("other", signalURL: nil)
        var modified = b.bytes
        modified[100] ^= 0xFF
        let wrongCopy = other.home + "/b-modified.bin"
        try Data(modified).write(to: URL(fileURLWithPath: wrongCopy))
        let aOther = try other.store.index(file: a.path)
        let bWrong = try other.store.index(file: wrongCopy)
        func entry(_ name: String, _ root: Hash256) throws -> FolderSidecar.Entry {
            let version = try #require(listing[name]?.remoteVersion)
            return FolderSidecar.Entry(
                path: name, fileid: version.fileid, etag: version.etag, size: version.size, mtime: version.mtime,
                root: root)
        }
        let planted = try #require(
            try await FolderBundlePublisher(
                client: other.client, store: other.store, identity: other.identity, logger: cluster.logger
            ).publish(
                folder: "/F", held: [entry("a.bin", aOther.root), entry("b.bin", bWrong.root)], listing: listing))
        #expect(planted.written)

        // This device holds b.bin as the server has it, and not a.bin.
        let mine = try await cluster.device("mine", signalURL: nil)
        let bRight = try mine.store.index(file: b.path)
        let publisher = FolderBundlePublisher(
            client: mine.client, store: mine.store, identity: mine.identity, logger: cluster.logger)
        let published = try #require(
            try await publisher.publish(folder: "/F", held: [entry("b.bin", bRight.root)], listing: listing))
        #expect(published.written)
        #expect(published.sidecar.files.map(\.path) == ["a.bin", "b.bin"])
        #expect(published.sidecar.files.first { $0.path == "a.bin" }?.root == aOther.root)
        #expect(published.sidecar.files.first { $0.path == "b.bin" }?.root == bRight.root)
        #expect(published.sidecar.writerKey == mine.identity.publicKey)
        // The part this device can serve: b.bin's chunks only, in the bundle manifest it published.
        let layout = try published.sidecar.layout(of: published.manifest)
        #expect(Array(published.holding).sorted() == Array(layout[1]))
        let read = try #require(
            await SidecarFolder(client: client, logger: cluster.logger).readFolderSidecar(of: "/F").sidecar)
        #expect(read.root == published.sidecar.root)

        // Asked again with nothing changed, the bundle there is kept (same σ, same swarm).
        let again = try #require(
            try await publisher.publish(folder: "/F", held: [entry("b.bin", bRight.root)], listing: listing))
        #expect(!again.written)
        #expect(again.sidecar.swarmKeys.swarmID == published.sidecar.swarmKeys.swarmID)

        // Over the limit of files a bundle lists, this device's own files are the ones kept.
        var capped = publisher
        capped.maximumFiles = 1
        let one = try #require(
            try await capped.publish(folder: "/F", held: [entry("b.bin", bRight.root)], listing: listing))
        #expect(one.sidecar.files.map(\.path) == ["b.bin"])
        #expect(one.holding.isFull)
        await cluster.stop()
    }
}
