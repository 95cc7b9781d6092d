import Foundation
import HarpBasics
import Testing

@testable import ChunkStore

/// A reproducible pseudo-random byte source (SplitMix64) for test data.
struct SeededBytes {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { raw in
            let words = count / 8
            let p = raw.baseAddress!.assumingMemoryBound(to: UInt64.self)
            for i in 0..<words { p[i] = next() }
            for i in (words * 8)..<count { raw[i] = UInt8(truncatingIfNeeded: next()) }
        }
        return out
    }
}

/// A temporary directory removed when the test ends.
final class TemporaryDirectory {
    let path: String

    init() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("harp-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        path = base.path
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }

    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let p = file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }
}

enum Vectors {
    static func url(_ name: String, _ ext: String) throws -> URL {
        try #require(Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Vectors"))
    }

    static func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: try url(name, "json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func bytes(hex: String) throws -> [UInt8] {
        try #require(Hex.decode(hex), "not hex: \(hex)")
    }

    static func hash(_ hex: String) throws -> Hash256 {
        try #require(Hash256(hex: hex))
    }
}

/// Small chunking parameters so store tests cut many chunks out of little data.
extension ChunkingParameters {
    static let small = ChunkingParameters(minSize: 2048, avgSize: 8192, maxSize: 32768, normalization: 1)
}
