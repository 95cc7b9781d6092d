import Foundation
import Testing

@testable import ChunkStore

@Suite("Merkle")
struct MerkleTests {
    struct RFC6962 {
        var leaves: [[UInt8]]
        var leafHashes: [Hash256]
        var roots: [Int: Hash256]
        var inclusion: [(index: Int, size: Int, path: [Hash256])]
        var consistency: [(size1: Int, size2: Int, proof: [Hash256])]

        init() throws {
            let json = try Vectors.json("merkle-rfc6962")
            leaves = try (try #require(json["leaves"] as? [String])).map { try Vectors.bytes(hex: $0) }
            leafHashes = try (try #require(json["leaf_hashes"] as? [String])).map { try Vectors.hash($0) }
            var roots: [Int: Hash256] = [:]
            for entry in try #require(json["roots"] as? [[String: Any]]) {
                roots[try #require(entry["size"] as? Int)] = try Vectors.hash(try #require(entry["root"] as? String))
            }
            self.roots = roots
            inclusion = try (try #require(json["inclusion"] as? [[String: Any]])).map {
                (
                    try #require($0["index"] as? Int), try #require($0["size"] as? Int),
                    try (try #require($0["path"] as? [String])).map { try Vectors.hash($0) }
                )
            }
            consistency = try (try #require(json["consistency"] as? [[String: Any]])).map {
                (
                    try #require($0["size1"] as? Int), try #require($0["size2"] as? Int),
                    try (try #require($0["proof"] as? [String])).map { try Vectors.hash($0) }
                )
            }
        }
    }

    @Test func leafHashesAndRootsMatchVectors() throws {
        let v = try RFC6962()
        #expect(v.leaves.map { Merkle.leafHash($0) } == v.leafHashes)
        #expect(v.roots.count == 9)
        for (size, root) in v.roots {
            #expect(Merkle.root(leafHashes: v.leafHashes.prefix(size)) == root, "size \(size)")
        }
    }

    @Test func inclusionProofsMatchVectors() throws {
        let v = try RFC6962()
        #expect(v.inclusion.count == 7)
        for entry in v.inclusion {
            let hashes = Array(v.leafHashes.prefix(entry.size))
            #expect(Merkle.inclusionProof(index: entry.index, leafHashes: hashes) == entry.path)
            let root = try #require(v.roots[entry.size])
            let leaf = v.leafHashes[entry.index]
            #expect(
                Merkle.verifyInclusion(
                    leafHash: leaf, index: entry.index, size: entry.size, proof: entry.path, root: root))
            // Tampered variants fail: wrong index, an index outside the size, wrong root, an extra or a missing element.
            if entry.size > 1 {
                let otherIndex = (entry.index + 1) % entry.size
                #expect(
                    !Merkle.verifyInclusion(
                        leafHash: leaf, index: otherIndex, size: entry.size, proof: entry.path, root: root))
            }
            #expect(
                !Merkle.verifyInclusion(
                    leafHash: leaf, index: entry.index, size: entry.index, proof: entry.path, root: root))
            #expect(
                !Merkle.verifyInclusion(
                    leafHash: leaf, index: entry.index, size: entry.size, proof: entry.path, root: Merkle.emptyRoot))
            #expect(
                !Merkle.verifyInclusion(
                    leafHash: leaf, index: entry.index, size: entry.size, proof: entry.path + [leaf], root: root))
            if !entry.path.isEmpty {
                #expect(
                    !Merkle.verifyInclusion(
                        leafHash: leaf, index: entry.index, size: entry.size, proof: Array(entry.path.dropLast()),
                        root: root))
            }
        }
    }

    @Test func consistencyProofsMatchVectors() throws {
        let v = try RFC6962()
        #expect(v.consistency.count == 5)
        for entry in v.consistency {
            let hashes = Array(v.leafHashes.prefix(entry.size2))
            #expect(Merkle.consistencyProof(oldSize: entry.size1, leafHashes: hashes) == entry.proof)
            let old = try #require(v.roots[entry.size1])
            let new = try #require(v.roots[entry.size2])
            #expect(
                Merkle.verifyConsistency(
                    oldSize: entry.size1, newSize: entry.size2, oldRoot: old, newRoot: new, proof: entry.proof))
            if entry.size1 != entry.size2 {
                #expect(
                    !Merkle.verifyConsistency(
                        oldSize: entry.size1, newSize: entry.size2, oldRoot: new, newRoot: new, proof: entry.proof))
                #expect(
                    !Merkle.verifyConsistency(
                        oldSize: entry.size1, newSize: entry.size2, oldRoot: old, newRoot: new,
                        proof: Array(entry.proof.dropLast())))
            }
        }
    }

    /// RFC 6962 §2.1 written as its recursive definition, to check the one-pass root against.
    static func referenceRoot(_ leaves: ArraySlice<Hash256>) -> Hash256 {
        if leaves.isEmpty { return Merkle.emptyRoot }
        if leaves.count == 1 { return leaves.first! }
        var k = 1
        while k * 2 < leaves.count { k *= 2 }
        let mid = leaves.startIndex + k
        return Merkle.nodeHash(referenceRoot(leaves[..<mid]), referenceRoot(leaves[mid...]))
    }

    @Test(arguments: [1, 2, 3, 7, 1000])
    func rootsAndProofsForSize(_ size: Int) throws {
        var random = SeededBytes(seed: UInt64(size))
        let leaves = (0..<size).map { _ in Merkle.leafHash(random.bytes(40)) }
        let root = Merkle.root(leafHashes: leaves)
        #expect(root == Self.referenceRoot(leaves[...]))
        for index in Set([0, size / 2, size - 1]) {
            let proof = try #require(Merkle.inclusionProof(index: index, leafHashes: leaves))
            #expect(Merkle.verifyInclusion(leafHash: leaves[index], index: index, size: size, proof: proof, root: root))
            // A flipped bit in the leaf, in any proof element or in the root fails.
            #expect(
                !Merkle.verifyInclusion(
                    leafHash: flip(leaves[index]), index: index, size: size, proof: proof, root: root))
            #expect(
                !Merkle.verifyInclusion(
                    leafHash: leaves[index], index: index, size: size, proof: proof, root: flip(root)))
            for position in proof.indices {
                var bad = proof
                bad[position] = flip(bad[position])
                #expect(
                    !Merkle.verifyInclusion(leafHash: leaves[index], index: index, size: size, proof: bad, root: root))
            }
        }
        if size > 1 {
            let old = size / 2
            let proof = try #require(Merkle.consistencyProof(oldSize: old, leafHashes: leaves))
            let oldRoot = Merkle.root(leafHashes: leaves.prefix(old))
            #expect(
                Merkle.verifyConsistency(oldSize: old, newSize: size, oldRoot: oldRoot, newRoot: root, proof: proof))
            #expect(
                !Merkle.verifyConsistency(
                    oldSize: old, newSize: size, oldRoot: flip(oldRoot), newRoot: root, proof: proof))
        }
    }

    func flip(_ hash: Hash256, bit: Int = 5) -> Hash256 {
        var bytes = hash.bytes
        bytes[bit / 8] ^= 1 << UInt8(bit % 8)
        return Hash256(bytes: bytes)!
    }
}
