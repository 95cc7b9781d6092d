import ChunkStore
import Foundation
import HarpBasics
import Testing

/// `Merkle.Tree` (the log's incremental tree) against the RFC 6962 vectors in ../shared/vectors/merkle-rfc6962.json.
@Suite("Merkle.Tree and the RFC 6962 vectors")
struct MerkleTreeTests {
    struct Vectors: Decodable {
        struct Root: Decodable {
            var size: Int
            var root: String
        }
        struct Inclusion: Decodable {
            var index: Int
            var size: Int
            var path: [String]
        }
        struct Consistency: Decodable {
            var size1: Int
            var size2: Int
            var proof: [String]
        }
        var leaves: [String]
        var leaf_hashes: [String]
        var roots: [Root]
        var inclusion: [Inclusion]
        var consistency: [Consistency]
    }

    let vectors: Vectors
    let tree: Merkle.Tree

    init() throws {
        vectors = try JSONDecoder().decode(Vectors.self, from: try SharedVectors.data("merkle-rfc6962.json"))
        let leaves = try vectors.leaves.map { try #require(Hex.decode($0)) }
        tree = Merkle.Tree(leafHashes: leaves.map { Merkle.leafHash($0) })
    }

    static func hash(_ hex: String) throws -> Hash256 { try #require(Hash256(hex: hex)) }

    @Test func leafHashesAndRootsAtEverySize() throws {
        #expect(try vectors.leaf_hashes.map(Self.hash) == (0..<tree.count).map(tree.leafHash(at:)))
        #expect(vectors.roots.count == 9)
        for root in vectors.roots {
            #expect(tree.root(size: root.size) == (try Self.hash(root.root)), "size \(root.size)")
        }
    }

    @Test func inclusionProofsMatchAndVerify() throws {
        #expect(vectors.inclusion.count == 7)
        for vector in vectors.inclusion {
            let path = try vector.path.map(Self.hash)
            #expect(tree.inclusionProof(index: vector.index, size: vector.size) == path)
            let root = tree.root(size: vector.size)
            let leaf = tree.leafHash(at: vector.index)
            #expect(
                Merkle.verifyInclusion(leafHash: leaf, index: vector.index, size: vector.size, proof: path, root: root))
            #expect(
                !Merkle.verifyInclusion(
                    leafHash: leaf, index: vector.index, size: vector.size, proof: path + [leaf], root: root))
            #expect(
                !Merkle.verifyInclusion(
                    leafHash: .zero, index: vector.index, size: vector.size, proof: path, root: root))
        }
    }

    @Test func consistencyProofsMatchAndVerify() throws {
        #expect(vectors.consistency.count == 5)
        for vector in vectors.consistency {
            let proof = try vector.proof.map(Self.hash)
            #expect(tree.consistencyProof(oldSize: vector.size1, newSize: vector.size2) == proof)
            let old = tree.root(size: vector.size1)
            let new = tree.root(size: vector.size2)
            #expect(
                Merkle.verifyConsistency(
                    oldSize: vector.size1, newSize: vector.size2, oldRoot: old, newRoot: new, proof: proof))
            #expect(
                !Merkle.verifyConsistency(
                    oldSize: vector.size1, newSize: vector.size2, oldRoot: .zero, newRoot: new, proof: proof))
        }
    }

    /// Every proof of the incremental tree equals the array code's, at every size up to 70.
    @Test func agreesWithTheArrayCodeAtEverySize() {
        let leaves = (0..<70).map { Merkle.leafHash(Array("leaf \($0)".utf8)) }
        let tree = Merkle.Tree(leafHashes: leaves)
        for size in 0...leaves.count {
            let prefix = Array(leaves.prefix(size))
            #expect(tree.root(size: size) == Merkle.root(leafHashes: prefix))
            for index in 0..<size {
                #expect(
                    tree.inclusionProof(index: index, size: size)
                        == Merkle.inclusionProof(index: index, leafHashes: prefix))
            }
            for old in 0...size {
                #expect(
                    tree.consistencyProof(oldSize: old, newSize: size)
                        == Merkle.consistencyProof(oldSize: old, leafHashes: prefix))
            }
        }
        #expect(tree.inclusionProof(index: 5, size: 71) == nil)
        #expect(tree.consistencyProof(oldSize: 3, newSize: 2) == nil)
    }
}
