import DevCloud
import Foundation
import HarpClient
import NextcloudClient
import Testing

/// `get -R` of a folder of small files from the server (issue 15, item 2), counted at DevCloud: one GET per file and
/// one PROPFIND per folder, a file that changed after the listing fetched as it is now, a failing file that does not
/// cost the others, and nothing written outside the output folder.
@Suite("Folder fetch from the server (in-process DevCloud)", .serialized)
struct FolderFetchTests {
    /// Sizes of the files in /F (the last is past the size where a swarm could save anything, still one GET).
    static let sizes = [0, 1, 4096, 64 << 10, 64 << 10, 100_000, 300_000]

    @Test func eachSmallFileCostsOneGETAndEachFolderOnePROPFIND() async throws {
        let cluster = try await Cluster.start()
        let files = try await Self.upload(cluster)
        let reader = try await cluster.device("reader", signalURL: nil)
        let out = reader.home + "/out"

        let before = cluster.cloud.requestCountsByMethod
        let (reports, failures) = try await Self.getRecursive("/F", into: out, device: reader, cluster: cluster)
        let cost = Self.delta(before, cluster.cloud.requestCountsByMethod)

        #expect(failures.isEmpty, "\(failures)")
        #expect(reports.count == files.count)
        #expect(cost == ["GET": files.count, "PROPFIND": 2], "requests: \(cost)")
        for (remote, bytes) in files {
            #expect(FileManager.default.contents(atPath: out + remote.dropFirst(2)) == bytes, "\(remote)")
        }
        #expect(try Self.filesBelow(out).count == files.count, "only the files, no partial file left")
        await reader.node.shutdown()
        await cluster.stop()
    }

    /// With a signaling server too: a file so small that the comparison would read it whole costs the one GET, with
    /// no sidecar read or published next to it.
    @Test func withSignalingASmallFileStillCostsOneGET() async throws {
        let cluster = try await Cluster.start()
        let files = try await Self.upload(cluster, sizes: [1, 64 << 10, 200_000])
        try await withSignalServer(directory: cluster.directory) { url in
            let reader = try await cluster.device("reader", signalURL: url)
            let before = cluster.cloud.requestCountsByMethod
            let (reports, failures) = try await Self.getRecursive(
                "/F", into: reader.home + "/out", device: reader, cluster: cluster)
            let cost = Self.delta(before, cluster.cloud.requestCountsByMethod)
            #expect(failures.isEmpty, "\(failures)")
            #expect(reports.allSatisfy { $0.method == "server" && $0.swarmID == nil })
            #expect(cost == ["GET": files.count, "PROPFIND": 2], "requests: \(cost)")
            #expect(try await cluster.client().list("/F").children.allSatisfy { $0.name != ".harp" })
            await reader.node.shutdown()
        }
        await cluster.stop()
    }

    /// `get -R` of a file lists it once, at Depth 1, and fetches it.
    @Test func aFileGivenWithRecursiveIsListedOnce() async throws {
        let cluster = try await Cluster.start()
        let files = try await Self.upload(cluster, sizes: [5000])
        let reader = try await cluster.device("reader", signalURL: nil)
        let before = cluster.cloud.requestCountsByMethod
        let jobs = try await FetchJobs.resolve(
            ["/F/f0.bin"], output: reader.home + "/one.bin", recursive: true, findUploads: false,
            client: reader.client, logger: cluster.logger)
        #expect(jobs.jobs.map(\.destination) == [reader.home + "/one.bin"])
        #expect(Self.delta(before, cluster.cloud.requestCountsByMethod) == ["PROPFIND": 1])
        _ = try await FetchQueue(fetcher: reader.fetcher()).fetchCurrentVersion(try #require(jobs.jobs.first))
        #expect(FileManager.default.contents(atPath: reader.home + "/one.bin") == files["/F/f0.bin"])
        await reader.node.shutdown()
        await cluster.stop()
    }

    /// A file overwritten between the listing and its GET: the If-Match GET gets 412, the file is listed again and its
    /// new bytes are written, reported with the new etag. A file deleted meanwhile fails, and nothing is written for
    /// it.
    @Test func aFileChangedAfterTheListingIsFetchedAsItIsNow() async throws {
        let cluster = try await Cluster.start()
        let files = try await Self.upload(cluster, sizes: [64 << 10, 64 << 10, 64 << 10], sub: 0)
        let reader = try await cluster.device("reader", signalURL: nil)
        let out = reader.home + "/out"
        let jobs = try await FetchJobs.resolve(
            ["/F"], output: out, recursive: true, findUploads: false, client: reader.client, logger: cluster.logger)
        let listed = try #require(jobs.jobs.first { $0.remotePath == "/F/f0.bin" })
        guard case .finished(let listedItem) = listed.source else {
            Issue.record("not a finished file")
            return
        }

        let changed = try cluster.makeFile("new.bin", count: 70_000, seed: 99).bytes
        let written = try await cluster.client().upload(Data(changed), to: "/F/f0.bin")
        try await cluster.client().delete("/F/f1.bin")

        var reports: [String: FetchReport] = [:]
        var failures: [String: any Error] = [:]
        await FetchQueue(fetcher: reader.fetcher(), parallel: 2).run(jobs.jobs) { path, result in
            switch result {
            case .success(let report): reports[path] = report
            case .failure(let error): failures[path] = error
            }
        }

        let report = try #require(reports["/F/f0.bin"], "\(failures)")
        #expect(FileManager.default.contents(atPath: out + "/f0.bin") == Data(changed))
        #expect(report.etag == written.etag)
        #expect(report.etag != listedItem.etag)
        #expect(report.size == Int64(changed.count))
        #expect(report.notes.contains { $0.contains("changed on the server after it was listed") }, "\(report.notes)")

        let gone = try #require(failures["/F/f1.bin"] as? NextcloudError)
        #expect(gone.kind == .notFoundOrNoAccess)
        #expect(!FileManager.default.fileExists(atPath: out + "/f1.bin"))

        #expect(FileManager.default.contents(atPath: out + "/f2.bin") == files["/F/f2.bin"])
        #expect(try Self.filesBelow(out).sorted() == [out + "/f0.bin", out + "/f2.bin"])
        await reader.node.shutdown()
        await cluster.stop()
    }

    /// A 503 on one file's GET is retried and the file arrives; a file whose GET keeps failing is reported, and every
    /// other file still arrives.
    @Test func a503OnOneFileIsRetriedAndDoesNotCostTheOthers() async throws {
        let cluster = try await Cluster.start()
        let files = try await Self.upload(cluster, sizes: Array(repeating: 32 << 10, count: 8))
        let reader = try await cluster.device("reader", signalURL: nil)

        cluster.cloud.injectFaults(
            status: 503, count: 2, method: "GET", pathPrefix: "/remote.php/dav/files/alice/F/f3.bin")
        let before = cluster.cloud.requestCountsByMethod
        let (reports, failures) = try await Self.getRecursive(
            "/F", into: reader.home + "/first", device: reader, cluster: cluster)
        #expect(failures.isEmpty, "\(failures)")
        #expect(reports.count == files.count)
        #expect(
            Self.delta(before, cluster.cloud.requestCountsByMethod) == ["GET": files.count + 2, "PROPFIND": 2])
        for (remote, bytes) in files {
            #expect(FileManager.default.contents(atPath: reader.home + "/first" + remote.dropFirst(2)) == bytes)
        }

        cluster.cloud.injectFaults(
            status: 503, count: 1000, method: "GET", pathPrefix: "/remote.php/dav/files/alice/F/f3.bin")
        let second = reader.home + "/second"
        let (more, failed) = try await Self.getRecursive("/F", into: second, device: reader, cluster: cluster)
        #expect(more.count == files.count - 1)
        #expect(failed.map { $0.0 } == ["/F/f3.bin"])
        #expect((failed.first?.1 as? NextcloudError)?.kind == .serverError)
        for (remote, bytes) in files where remote != "/F/f3.bin" {
            #expect(FileManager.default.contents(atPath: second + remote.dropFirst(2)) == bytes)
        }
        #expect(try Self.filesBelow(second).count == files.count - 1, "no partial file of f3.bin is left")
        await reader.node.shutdown()
        await cluster.stop()
    }

    /// Links left in the output folder by anyone: one at a file's partial name pointing outside, one in place of a
    /// sub-folder. The file still arrives (the link is removed, never written through), the sub-folder's files are
    /// refused, and nothing is written outside the output folder.
    @Test func nothingLandsOutsideTheOutputFolder() async throws {
        let cluster = try await Cluster.start()
        let files = try await Self.upload(cluster, sizes: [10_000, 20_000], sub: 0)
        try await cluster.client().makeFolder("/F/sub")
        _ = try await cluster.client().upload(Data("below".utf8), to: "/F/sub/deep.txt")
        let reader = try await cluster.device("reader", signalURL: nil)
        let out = reader.home + "/out"
        let outside = cluster.directory + "/outside"
        try FileManager.default.createDirectory(atPath: outside + "/folder", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: outside + "/victim"))
        #expect(symlink(outside + "/victim", out + "/f0.bin.harp-part") == 0)
        #expect(symlink(outside + "/folder", out + "/sub") == 0)

        let (reports, failures) = try await Self.getRecursive("/F", into: out, device: reader, cluster: cluster)

        #expect(Set(reports.map(\.remotePath)) == ["/F/f0.bin", "/F/f1.bin"])
        #expect(failures.map { $0.0 } == ["/F/sub/deep.txt"])
        let refusal = failures.first.map { "\($0.1)" } ?? ""
        #expect(refusal.contains("symbolic link"), "\(refusal)")
        #expect(FileManager.default.contents(atPath: out + "/f0.bin") == files["/F/f0.bin"])
        #expect(FileManager.default.contents(atPath: out + "/f1.bin") == files["/F/f1.bin"])
        #expect(FileManager.default.contents(atPath: outside + "/victim") == Data("keep me".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside + "/folder").isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).sorted() == ["folder", "victim"])
        await reader.node.shutdown()
        await cluster.stop()
    }

    // MARK: - Helpers

    /// Uploads `/F/f<i>.bin` of each size in `sizes` (and, by default, two files into `/F/sub`); returns the remote
    /// paths with their bytes.
    static func upload(_ cluster: Cluster, sizes: [Int] = sizes, sub: Int = 2) async throws -> [String: Data] {
        let client = cluster.client()
        try await client.makeFolder("/F")
        var files: [String: Data] = [:]
        for (index, size) in sizes.enumerated() {
            let bytes = Data(try cluster.makeFile("f\(index).bin", count: size, seed: UInt8(index)).bytes)
            _ = try await client.upload(bytes, to: "/F/f\(index).bin")
            files["/F/f\(index).bin"] = bytes
        }
        if sub > 0 && sizes.count > 1 {
            try await client.makeFolder("/F/sub")
            for index in 0..<sub {
                let bytes = Data(try cluster.makeFile("s\(index).bin", count: 3000 + index, seed: 50).bytes)
                _ = try await client.upload(bytes, to: "/F/sub/s\(index).bin")
                files["/F/sub/s\(index).bin"] = bytes
            }
        }
        return files
    }

    /// `get -R remote -o out` through the library, as the command runs it.
    static func getRecursive(
        _ remote: String, into out: String, device: Device, cluster: Cluster
    ) async throws -> (reports: [FetchReport], failures: [(String, any Error)]) {
        let jobs = try await FetchJobs.resolve(
            [remote], output: out, recursive: true, findUploads: false, client: device.client, logger: cluster.logger)
        var reports: [FetchReport] = []
        var failures: [(String, any Error)] = jobs.refused.map { ($0.path, $0.error) }
        await FetchQueue(fetcher: device.fetcher()).run(jobs.jobs) { path, result in
            switch result {
            case .success(let report): reports.append(report)
            case .failure(let error): failures.append((path, error))
            }
        }
        return (reports, failures)
    }

    /// The requests counted between two snapshots, by method (methods with none left out).
    static func delta(_ before: [String: Int], _ after: [String: Int]) -> [String: Int] {
        after.compactMapValues { $0 }.reduce(into: [:]) { result, pair in
            let count = pair.value - (before[pair.key] ?? 0)
            if count != 0 { result[pair.key] = count }
        }
    }

    /// Every regular file and link below `root`, links not followed.
    static func filesBelow(_ root: String) throws -> [String] {
        var found: [String] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: root) {
            let path = root + "/" + name
            let type = try FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType
            if type == .typeDirectory {
                found += try filesBelow(path)
            } else {
                found.append(path)
            }
        }
        return found
    }
}
