import ChunkStore
import Foundation
import Testing

/// Runs the built `harp-cli` and kills it with SIGKILL while it writes a download.
@Suite("Crash and resume (real process)")
struct CrashResumeTests {
    static let chunking = ["--chunking", "16384", "65536", "262144"]

    @Test func killDashNineLeavesIndexAndDiskInAgreement() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("harp-e2e-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = dir + "/source.bin"
        var generator = SystemRandomNumberGenerator()
        let data = (0..<(24 << 20) / 8).flatMap { _ in withUnsafeBytes(of: generator.next()) { Array($0) } }
        try Data(data).write(to: URL(fileURLWithPath: source))
        let destination = dir + "/copy.bin"
        let store = dir + "/store.sqlite"

        // First run: kill it once it has written a third of the chunks.
        let process = Process()
        process.executableURL = HarpBinary.url
        process.arguments = ["debug-download", source, destination, "--store", store] + Self.chunking
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        var seen = ""
        var killedAt = 0
        while killedAt == 0 {
            let chunk = output.fileHandleForReading.availableData
            #expect(!chunk.isEmpty, "the writer ended before it could be killed")
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
            if let line = seen.split(separator: "\n").last, line.hasPrefix("wrote "),
                let count = Int(line.dropFirst(6)), count >= 120
            {
                kill(process.processIdentifier, SIGKILL)
                killedAt = count
            }
        }
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        #expect(!FileManager.default.fileExists(atPath: destination))

        // The store reopens; the resumed download holds exactly the chunks that are correct on disk, at least all
        // those reported written before the kill, and none that are not.
        let chunkStore = try ChunkStore(path: store)
        let outcome = try chunkStore.index(
            file: source, parameters: .init(minSize: 16384, avgSize: 65536, maxSize: 262_144, normalization: 1))
        let manifest = try #require(try chunkStore.manifest(root: outcome.root))
        let sink = try chunkStore.openDownload(manifest: manifest, root: outcome.root, destination: destination)
        let part = [UInt8](try Data(contentsOf: URL(fileURLWithPath: destination + ".harp-part")))
        let correctOnDisk = Set(
            (0..<manifest.chunks.count).filter { index in
                let range = manifest.range(of: index)
                return Hash256.sha256(Array(part[Int(range.lowerBound)..<Int(range.upperBound)]))
                    == manifest.chunks[index].hash
            })
        #expect(Set(sink.recordedChunks) == correctOnDisk)
        #expect(correctOnDisk.count >= killedAt)
        #expect(correctOnDisk.count < manifest.chunks.count)

        // A second run resumes: it writes only what is missing, then finishes with a byte-identical file.
        let resume = Process()
        resume.executableURL = HarpBinary.url
        resume.arguments = ["debug-download", source, destination, "--store", store, "--seed", "2"] + Self.chunking
        let resumeOutput = Pipe()
        resume.standardOutput = resumeOutput
        try resume.run()
        let text = String(decoding: resumeOutput.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        resume.waitUntilExit()
        #expect(resume.terminationStatus == 0)
        let rewritten = text.split(separator: "\n").filter { $0.hasPrefix("wrote ") }.count
        #expect(rewritten == manifest.chunks.count - correctOnDisk.count)
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: destination))) == data)
    }
}

/// The `harp-cli` binary built next to the test bundle.
enum HarpBinary {
    static var url: URL {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var directory = executable.deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("harp-cli").path),
            directory.path != "/"
        {
            directory = directory.deletingLastPathComponent()
        }
        return directory.appendingPathComponent("harp-cli")
    }
}
