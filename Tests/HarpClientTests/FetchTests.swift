import ChunkStore
import Foundation
import Glibc
import HarpClient
import NextcloudClient
import SwarmKit
import Testing

/// `get` through the library against an in-process DevCloud and a loopback signaling server.
@Suite("Fetch (in-process DevCloud and signaling)", .serialized)
struct FetchTests {
    @Test func aFileComesFromTheServerAloneWithoutSignaling() async throws {
        let cluster = try await Cluster.start()
        let file = try cluster.makeFile("f.bin", count: 3 << 20)
        _ = try await cluster.client().upload(Data(file.bytes), to: "/f.bin")
        let reader = try await cluster.device("reader", signalURL: nil)
        let jobs = try await FetchJobs.resolve(
            ["/f.bin"], output: reader.home + "/out/", recursive: false, findUploads: false,
            client: reader.client, logger: cluster.logger)
        let job = try #require(jobs.jobs.first)
        #expect(job.destination == reader.home + "/out/f.bin")
        let report = try await reader.fetcher().fetch(job)
        #expect(report.method == "server")
        #expect(report.bytesFromServer == Int64(file.bytes.count))
        #expect(report.notes.contains("no signaling server configured: fetching from the server alone"))
        #expect(FileManager.default.contents(atPath: job.destination) == Data(file.bytes))
        await reader.node.shutdown()
        await cluster.stop()
    }

    @Test func aSecondReaderGetsTheFileFromTheFirstWhichSeedsIt() async throws {
        let cluster = try await Cluster.start()
        let file = try cluster.makeFile("f.bin", count: 3 << 20)
        _ = try await cluster.client().upload(Data(file.bytes), to: "/f.bin")
        try await withSignalServer(directory: cluster.directory) { url in
            let first = try await cluster.device("first", signalURL: url)
            let item = try await first.client.item(at: "/f.bin")
            let seeded = try await first.fetcher(seedAfter: true).fetch(
                FetchJob(source: .finished(item), destination: first.home + "/f.bin"))
            #expect(seeded.method == "server")
            #expect(seeded.notes.contains("published the sidecar"))
            #expect(seeded.swarmID != nil)

            // The second reader may not use the server: every byte comes from the first (the comparison still runs).
            let second = try await cluster.device("second", signalURL: url)
            let report = try await second.fetcher(useServer: false).fetch(
                FetchJob(source: .finished(item), destination: second.home + "/f.bin"))
            #expect(report.method == "swarm")
            #expect(report.bytesFromPeers == Int64(file.bytes.count))
            #expect(report.bytesFromServer == 0)
            #expect(report.check?.matches == true)
            #expect(report.swarmID == seeded.swarmID)
            #expect(FileManager.default.contents(atPath: second.home + "/f.bin") == Data(file.bytes))
            await first.node.shutdown()
            await second.node.shutdown()
        }
        await cluster.stop()
    }

    /// One listening port for every swarm of a process, the one `--listen HOST:PORT` names: a reader gets two files
    /// from a seeder through it, each connection naming its swarm before the handshake.
    @Test func twoFilesAreServedThroughOneFixedPort() async throws {
        let cluster = try await Cluster.start()
        let files = [
            try cluster.makeFile("a.bin", count: 2 << 20, seed: 1),
            try cluster.makeFile("b.bin", count: 2 << 20, seed: 2),
        ]
        for (name, file) in zip(["a.bin", "b.bin"], files) {
            _ = try await cluster.client().upload(Data(file.bytes), to: "/" + name)
        }
        let free = try #require(PeerSettings.splitListen("127.0.0.1:\(try freePort())"))
        try await withSignalServer(directory: cluster.directory) { url in
            let first = try await cluster.device("first", signalURL: url, listenPort: free.port)
            let second = try await cluster.device("second", signalURL: url)
            for (name, file) in zip(["a.bin", "b.bin"], files) {
                let item = try await first.client.item(at: "/" + name)
                let seeded = try await first.fetcher(seedAfter: true).fetch(
                    FetchJob(source: .finished(item), destination: first.home + "/" + name))
                #expect(seeded.method == "server")
                #expect(await first.node.listenPort == free.port)
                let report = try await second.fetcher(useServer: false).fetch(
                    FetchJob(source: .finished(item), destination: second.home + "/" + name))
                #expect(report.method == "swarm")
                #expect(report.bytesFromPeers == Int64(file.bytes.count))
                #expect(FileManager.default.contents(atPath: second.home + "/" + name) == Data(file.bytes))
            }
            await first.node.shutdown()
            await second.node.shutdown()
        }
        await cluster.stop()
    }

    @Test func listenAddressesParse() {
        #expect(PeerSettings.splitListen("0.0.0.0")! == ("0.0.0.0", 0))
        #expect(PeerSettings.splitListen("10.1.2.3:7000")! == ("10.1.2.3", 7000))
        #expect(PeerSettings.splitListen("[::1]:7000")! == ("::1", 7000))
        #expect(PeerSettings.splitListen("::")! == ("::", 0))
        for bad in ["", ":7000", "host:70000", "host:x", "[::1", "[::1]7000"] {
            #expect(PeerSettings.splitListen(bad) == nil, "\(bad)")
        }
    }

    /// A bundle's first file starts at byte 0 of the bundle, which is longer than the file: its samples are compared
    /// like any other file's (they were refused as a short file, which failed about one bundle get in three), and a
    /// changed byte in it is still found.
    @Test func theFirstFileOfABundleIsComparedInsideTheBundle() async throws {
        let cluster = try await Cluster.start()
        let first = try cluster.makeFile("first.bin", count: 5_000)
        let second = try cluster.makeFile("second.bin", count: 7_000)
        _ = try await cluster.client().upload(Data(first.bytes), to: "/first.bin")
        _ = try await cluster.client().upload(Data(second.bytes), to: "/second.bin")
        let bundle = cluster.directory + "/bundle.part"
        try Data(first.bytes + second.bytes).write(to: URL(fileURLWithPath: bundle))
        let version = try #require(try await cluster.client().item(at: "/first.bin").remoteVersion)
        let comparison = ServerComparison(
            client: cluster.client(), remotePath: "/first.bin", etag: version.etag, size: version.size)
        let ranges: [(offset: Int64, length: Int64)] = [(0, 4096), (904, 4096)]
        #expect(try await comparison.check(localPath: bundle, localBase: 0, ranges: ranges).matches)
        var changed = first.bytes + second.bytes
        changed[1000] ^= 0xFF
        try Data(changed).write(to: URL(fileURLWithPath: bundle))
        #expect(try await comparison.check(localPath: bundle, localBase: 0, ranges: ranges).mismatchAt == 1000)
        await cluster.stop()
    }

    /// A sidecar published for a modified copy: every chunk verifies against its root, but the comparison with the
    /// server's bytes refuses it and nothing is renamed into place.
    @Test func theSpotCheckRefusesACopyThatIsNotTheServersFile() async throws {
        let cluster = try await Cluster.start()
        let file = try cluster.makeFile("f.bin", count: 2 << 20)
        _ = try await cluster.client().upload(Data(file.bytes), to: "/f.bin")
        var modified = file.bytes
        for index in stride(from: 0, to: modified.count, by: 4096) { modified[index] ^= 0xFF }
        let liarCopy = cluster.directory + "/modified.bin"
        try Data(modified).write(to: URL(fileURLWithPath: liarCopy))

        // The comparison alone finds it at once.
        let uploaded = try await cluster.client().item(at: "/f.bin")
        let version = try #require(uploaded.remoteVersion)
        let comparison = ServerComparison(
            client: cluster.client(), remotePath: "/f.bin", etag: version.etag, size: version.size)
        #expect(try await comparison.check(localPath: liarCopy, depth: .sample).mismatchAt != nil)
        #expect(try await comparison.check(localPath: file.path, depth: .everyByte).matches)

        try await withSignalServer(directory: cluster.directory) { url in
            let liar = try await cluster.device("liar", signalURL: url)
            let outcome = try liar.store.index(file: liarCopy)
            let sidecar = try await SidecarPublisher(
                client: liar.client, identity: liar.identity, logger: cluster.logger
            )
            .publish(
                .version(version), root: outcome.root, chunking: outcome.parameters, salt: Sidecar.randomSalt(),
                manifest: try liar.store.manifest(root: outcome.root), nextTo: "/f.bin")
            try await liar.seed(liarCopy, sidecar: sidecar)

            let reader = try await cluster.device("reader", signalURL: url)
            let item = try await reader.client.item(at: "/f.bin")
            await #expect(throws: FetchError.self) {
                _ = try await reader.fetcher(useServer: false).fetch(
                    FetchJob(source: .finished(item), destination: reader.home + "/f.bin"))
            }
            #expect(!FileManager.default.fileExists(atPath: reader.home + "/f.bin"))

            // With the server allowed, its bytes decide and replace the sidecar.
            let fixed = try await reader.fetcher().fetch(
                FetchJob(source: .finished(item), destination: reader.home + "/f.bin"))
            #expect(fixed.method == "server")
            #expect(fixed.notes.contains { $0.contains("differs from the server's file") })
            #expect(FileManager.default.contents(atPath: reader.home + "/f.bin") == Data(file.bytes))
            await liar.node.shutdown()
            await reader.node.shutdown()
        }
        await cluster.stop()
    }

    /// `get /F/x.bin -o out/` of a file whose upload is still running writes `out/x.bin`, as for a finished file (it
    /// used to write a file named `out`).
    @Test func aFileStillUploadingLandsWhereAFinishedOneWould() async throws {
        let cluster = try await Cluster.start()
        try await cluster.client().makeFolder("/F")
        let file = try cluster.makeFile("x.bin", count: 1 << 20)
        try await withSignalServer(directory: cluster.directory) { url in
            // The uploader announces the file with a pending sidecar and seeds it; the server does not have it yet.
            let uploader = try await cluster.device("uploader", signalURL: url)
            let outcome = try uploader.store.index(file: file.path)
            let sidecar = try await SidecarPublisher(
                client: uploader.client, identity: uploader.identity, logger: cluster.logger
            ).publish(
                .pendingUpload(size: outcome.size, mtime: 0), root: outcome.root, chunking: outcome.parameters,
                salt: Sidecar.randomSalt(), manifest: try uploader.store.manifest(root: outcome.root),
                nextTo: "/F/x.bin")
            try await uploader.seed(file.path, sidecar: sidecar)

            let reader = try await cluster.device("reader", signalURL: url)
            let out = reader.home + "/out/"
            let jobs = try await FetchJobs.resolve(
                ["/F/x.bin"], output: out, recursive: false, findUploads: true, client: reader.client,
                logger: cluster.logger)
            let job = try #require(jobs.jobs.first)
            guard case .uploading = job.source else {
                Issue.record("the file was not found as an upload in progress")
                return
            }
            #expect(job.destination == out + "x.bin")
            let report = try await reader.fetcher().fetch(job)
            #expect(report.method == "swarm")
            #expect(report.bytesFromPeers == Int64(file.bytes.count))
            #expect(FileManager.default.contents(atPath: out + "x.bin") == Data(file.bytes))
            var isDirectory: ObjCBool = false
            #expect(FileManager.default.fileExists(atPath: reader.home + "/out", isDirectory: &isDirectory))
            #expect(isDirectory.boolValue, "out must be a folder, not the file")
            await uploader.node.shutdown()
            await reader.node.shutdown()
        }
        await cluster.stop()
    }

    @Test func outputPathsAreTheSameForEveryKindOfFile() throws {
        #expect(try OutputFolder.destination(ofFile: "/F/x.bin", output: nil, count: 1) == "x.bin")
        #expect(try OutputFolder.destination(ofFile: "/F/x.bin", output: "out/", count: 1) == "out/x.bin")
        #expect(try OutputFolder.destination(ofFile: "/F/x.bin", output: "copy.bin", count: 1) == "copy.bin")
        #expect(try OutputFolder.destination(ofFile: "/F/x.bin", output: "out", count: 2) == "out/x.bin")
        #expect(throws: OutputPathError.self) { try OutputFolder.destination(ofFile: "/F/..", output: nil, count: 1) }
    }
}

/// A port that was free a moment ago (bound to port 0 on loopback, then released).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EMFILE) }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    guard bound else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: address.sin_port))
}
