import ArgumentParser
import ChunkStore
import Foundation
import HarpClient

/// `harp-cli debug-download`: copies a local file through a download sink, chunk by chunk in a shuffled order.
///
/// Test support, hidden from help: the end-to-end crash test kills this process with SIGKILL halfway and checks that
/// the chunk store and the partial file agree afterwards. It prints `wrote N` after each chunk.
struct DebugDownloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "debug-download",
        abstract: "Copy a local file through a download sink (test support).",
        shouldDisplay: false
    )

    @Argument(help: "The file whose bytes stand in for peers.") var source: String
    @Argument(help: "Where the copy is written.") var destination: String
    @Option(help: "Seed of the shuffled chunk order.") var seed: UInt64 = 1
    @Option(parsing: .upToNextOption, help: "Chunking: minimum, average and maximum chunk size in bytes.")
    var chunking: [Int] = []
    @OptionGroup var store: StoreOptions

    func run() async throws {
        let chunkStore = try store.open()
        let parameters =
            chunking.count == 3
            ? ChunkingParameters(minSize: chunking[0], avgSize: chunking[1], maxSize: chunking[2], normalization: 1)
            : .default
        let outcome = try chunkStore.index(file: source, parameters: parameters)
        guard let manifest = try chunkStore.manifest(root: outcome.root) else { throw ExitCode(1) }
        let sink = try chunkStore.openDownload(manifest: manifest, root: outcome.root, destination: destination)
        let input = try FileHandle(forReadingFrom: URL(fileURLWithPath: source))
        var generator = SplitMix(state: seed)
        var written = 0
        for index in sink.missing.shuffled(using: &generator) {
            try input.seek(toOffset: UInt64(manifest.offsets[index]))
            let bytes = [UInt8](try input.read(upToCount: manifest.chunks[index].length) ?? Data())
            try sink.write(index: index, bytes: bytes)
            written += 1
            FileHandle.standardOutput.write(Data("wrote \(written)\n".utf8))
        }
        try sink.finish()
        print("done")
    }
}

/// A seeded generator so a run's order can be reproduced.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
