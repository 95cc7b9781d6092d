import ArgumentParser
import ChunkStore
import Foundation
import HarpClient

/// `harp-cli index PATH...`: chunk and hash files locally and print what the index holds for them.
struct IndexCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "Chunk, hash and index local files (no network).",
        discussion: """
            Reads each file once, cuts it into content-defined chunks (FastCDC, about 1 MiB each), hashes every chunk \
            with SHA-256 and records the version's content root in the local chunk store. A file whose size, mtime \
            and inode have not changed since it was last indexed is not read again.

            Examples:
              harp-cli index ~/Footage/raw.mov
              harp-cli index -R ~/Nextcloud/Team --json > index.jsonl
            """
    )

    @Argument(help: "Files or folders to index. Folders are walked recursively.", completion: .file())
    var paths: [String]

    @Flag(name: [.customShort("R"), .long], help: "Accepted for symmetry with get/put; folders are always recursive.")
    var recursive = false

    @Flag(help: "Print one JSON object per file instead of a table.")
    var json = false

    @OptionGroup var store: StoreOptions
    @OptionGroup var config: ConfigOptions

    func run() async throws {
        let chunkStore = try store.open(config: try config.harpConfig())
        let files = try collectFiles()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var failures = 0
        if !json, !files.isEmpty {
            print(
                "size".padding(toLength: 14, withPad: " ", startingAt: 0) + "chunks  root"
                    + String(repeating: " ", count: 58) + "throughput  path")
        }
        for file in files {
            do {
                let outcome = try await Task.detached { try chunkStore.index(file: file) }.value
                if json {
                    let line = IndexLine(outcome)
                    print(String(decoding: try encoder.encode(line), as: UTF8.self))
                } else {
                    print(Self.row(outcome))
                }
            } catch {
                failures += 1
                printError("harp-cli index: \(file): \(error)")
            }
        }
        if failures > 0 { throw ExitCode(HarpExitCode.failure.rawValue) }
    }

    private func collectFiles() throws -> [String] {
        var result: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                printError("harp-cli index: \(path): no such file or folder")
                throw ExitCode(HarpExitCode.notFoundOrNoAccess.rawValue)
            }
            guard isDirectory.boolValue else {
                result.append(path)
                continue
            }
            let base = URL(fileURLWithPath: path)
            guard
                let walker = FileManager.default.enumerator(
                    at: base, includingPropertiesForKeys: [.isRegularFileKey], options: [])
            else { continue }
            var found: [String] = []
            for case let url as URL in walker {
                guard (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true,
                    !url.lastPathComponent.hasSuffix(".harp-part")
                else { continue }
                found.append(url.path)
            }
            result += found.sorted()
        }
        return result
    }

    static func row(_ outcome: IndexOutcome) -> String {
        let rate = outcome.reused ? "unchanged" : Format.rate(Double(outcome.size) / max(outcome.seconds, 1e-9))
        return formatBytes(outcome.size).padding(toLength: 14, withPad: " ", startingAt: 0)
            + String(outcome.chunkCount).padding(toLength: 8, withPad: " ", startingAt: 0)
            + outcome.root.hex + "  " + rate.padding(toLength: 12, withPad: " ", startingAt: 0) + outcome.path
    }
}

/// The JSON form of one indexed file (`harp-cli index --json`).
struct IndexLine: Encodable {
    var path: String
    var size: Int64
    var chunks: Int
    var root: String
    var reused: Bool
    var seconds: Double
    var bytesPerSecond: Double
    var chunking: ChunkingParameters

    init(_ outcome: IndexOutcome) {
        path = outcome.path
        size = outcome.size
        chunks = outcome.chunkCount
        root = outcome.root.hex
        reused = outcome.reused
        seconds = outcome.seconds
        bytesPerSecond = outcome.seconds > 0 ? Double(outcome.size) / outcome.seconds : 0
        chunking = outcome.parameters
    }
}
