import Foundation
import Testing

@testable import ChunkStore

@Suite("FastCDC")
struct FastCDCTests {
    /// The FastCDC 2020 reference cut points (Rust fastcdc crate, v2020) with the crate's own gear table and masks.
    @Test func referenceVectors() throws {
        let root = try Vectors.json("fastcdc-2020")
        let gear = try (try #require(root["gear"] as? [String])).map {
            try #require(UInt64($0.dropFirst(2), radix: 16))
        }
        let masks = try (try #require(root["masks"] as? [String])).map {
            try #require(UInt64($0.dropFirst(2), radix: 16))
        }
        let cases = try #require(root["cases"] as? [[String: Any]])
        #expect(cases.count == 7)
        let jpg = [UInt8](try Data(contentsOf: try Vectors.url("SekienAkashita", "jpg")))
        #expect(jpg.count == 109_466)
        for testCase in cases {
            let name = try #require(testCase["name"] as? String)
            let input =
                (testCase["input"] as? String) == "SekienAkashita.jpg" ? jpg : [UInt8](repeating: 0, count: 10240)
            let parameters = ChunkingParameters(
                minSize: try #require(testCase["min_size"] as? Int),
                avgSize: try #require(testCase["avg_size"] as? Int),
                maxSize: try #require(testCase["max_size"] as? Int),
                normalization: try #require(testCase["normalization"] as? Int),
                gear: "fastcdc-2020")
            let seed = UInt64(try #require(testCase["seed"] as? Int))
            let chunker = FastCDC(parameters: parameters, table: GearTable(gear: gear, masks: masks, seed: seed))
            let expected = try (try #require(testCase["chunks"] as? [[String: Any]])).map { chunk in
                let hashText = try #require(chunk["hash"] as? String)
                return (
                    offset: try #require(chunk["offset"] as? Int),
                    length: try #require(chunk["length"] as? Int),
                    hash: try #require(UInt64(hashText))
                )
            }
            let actual = chunker.chunks(of: input)
            #expect(actual.count == expected.count, "\(name)")
            for (a, e) in zip(actual, expected) {
                #expect(a.offset == e.offset && a.length == e.length && a.hash == e.hash, "\(name) at \(e.offset)")
            }
            #expect(actual.reduce(0) { $0 + $1.length } == input.count)
        }
    }

    @Test func deterministicAndWithinBounds() throws {
        var random = SeededBytes(seed: 1)
        let data = random.bytes(24 << 20)
        let chunker = try FastCDC()
        let first = chunker.chunks(of: data)
        let second = chunker.chunks(of: data)
        #expect(first.map(\.offset) == second.map(\.offset))
        let p = chunker.parameters
        for chunk in first.dropLast() {
            #expect(chunk.length >= p.minSize && chunk.length <= p.maxSize)
        }
        #expect(try #require(first.last).length <= p.maxSize)
        #expect(first.reduce(0) { $0 + $1.length } == data.count)
        // The average is near the target on random data (normalised chunking keeps it close).
        let average = data.count / first.count
        #expect(average > p.avgSize / 2 && average < p.avgSize * 2)
    }

    @Test func boundariesDependOnlyOnBytesFromTheChunkStart() throws {
        // Cutting the same bytes from a buffer that continues differently beyond maxSize gives the same cut.
        var random = SeededBytes(seed: 2)
        let chunker = try FastCDC()
        let head = random.bytes(chunker.parameters.maxSize)
        let a = chunker.chunks(of: head + random.bytes(1 << 20))
        let b = chunker.chunks(of: head + random.bytes(1 << 20))
        #expect(a[0].length == b[0].length)
    }

    @Test func insertingHundredBytesChangesAtMostThreeChunks() throws {
        var random = SeededBytes(seed: 3)
        var data = random.bytes(64 << 20)
        let chunker = try FastCDC()
        let before = chunker.chunks(of: data).map { Array(data[$0.offset..<$0.offset + $0.length]) }
        data.insert(contentsOf: random.bytes(100), at: data.count / 2)
        let after = chunker.chunks(of: data).map { Array(data[$0.offset..<$0.offset + $0.length]) }
        let beforeHashes = Set(before.map { Hash256.sha256($0) })
        let changed = after.filter { !beforeHashes.contains(Hash256.sha256($0)) }
        #expect(!changed.isEmpty)
        #expect(changed.count <= 3)
        #expect(before.count >= 40)
    }

    @Test func emptyAndTinyInputs() throws {
        let chunker = try FastCDC()
        #expect(chunker.chunks(of: [UInt8]()).isEmpty)
        let one = chunker.chunks(of: [42])
        #expect(one.count == 1 && one[0].length == 1)
    }

    @Test func invalidParametersAreRefused() {
        #expect(throws: ChunkStoreError.self) {
            _ = try FastCDC(
                parameters: ChunkingParameters(minSize: 4096, avgSize: 1024, maxSize: 8192, normalization: 1))
        }
        #expect(throws: ChunkStoreError.self) {
            _ = try FastCDC(
                parameters: ChunkingParameters(minSize: 1024, avgSize: 4096, maxSize: 64 << 20, normalization: 1))
        }
    }
}
