internal import Crypto

/// Binary Merkle trees with RFC 6962 / RFC 9162 hashing.
///
/// - leaf hash = SHA-256(0x00 || leaf data), node hash = SHA-256(0x01 || left || right);
/// - a tree of n > 1 leaves splits at k, the largest power of two smaller than n;
/// - the empty tree's root is SHA-256 of the empty string.
///
/// Proof paths are ordered from the leaf level up to the root, as RFC 9162 §2.1.3 and §2.1.4 produce them. The same
/// code serves content roots (leaves are chunk records) and, later, the signaling server's append-only version log.
public enum Merkle {
    /// SHA-256(0x00 || data).
    public static func leafHash(_ data: UnsafeRawBufferPointer) -> Hash256 {
        var hasher = SHA256()
        withUnsafeBytes(of: UInt8(0)) { hasher.update(bufferPointer: $0) }
        hasher.update(bufferPointer: data)
        return Hash256(hasher.finalize())
    }

    /// SHA-256(0x00 || data).
    public static func leafHash(_ data: [UInt8]) -> Hash256 {
        data.withUnsafeBytes { leafHash($0) }
    }

    /// SHA-256(0x01 || left || right).
    public static func nodeHash(_ left: Hash256, _ right: Hash256) -> Hash256 {
        var hasher = SHA256()
        withUnsafeBytes(of: UInt8(1)) { hasher.update(bufferPointer: $0) }
        left.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        right.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return Hash256(hasher.finalize())
    }

    /// The root of the empty tree: SHA-256 of no bytes.
    public static let emptyRoot: Hash256 = Hash256.sha256([])

    /// The root over `leafHashes` (already leaf-hashed), computed in one pass with a stack of complete subtrees.
    public static func root(leafHashes: some Collection<Hash256>) -> Hash256 {
        guard !leafHashes.isEmpty else { return emptyRoot }
        // stack holds roots of complete subtrees of decreasing size; sizes[i] = 2^height.
        var stack: [(hash: Hash256, size: Int)] = []
        stack.reserveCapacity(64)
        for leaf in leafHashes {
            var node = (hash: leaf, size: 1)
            while let top = stack.last, top.size == node.size {
                stack.removeLast()
                node = (nodeHash(top.hash, node.hash), top.size * 2)
            }
            stack.append(node)
        }
        // Fold the incomplete right edge: right subtrees are smaller, so this matches the split at powers of two.
        var right = stack.removeLast().hash
        while let left = stack.popLast() {
            right = nodeHash(left.hash, right)
        }
        return right
    }

    /// The largest power of two strictly smaller than `n` (n >= 2).
    static func split(_ n: Int) -> Int {
        precondition(n >= 2)
        var k = 1
        while k << 1 < n { k <<= 1 }
        return k
    }

    /// The inclusion proof (audit path) of leaf `index` in the tree over `leafHashes`; nil if out of range.
    public static func inclusionProof(index: Int, leafHashes: [Hash256]) -> [Hash256]? {
        guard index >= 0, index < leafHashes.count else { return nil }
        var path: [Hash256] = []
        func walk(_ m: Int, _ range: Range<Int>) {
            guard range.count > 1 else { return }
            let k = split(range.count)
            let mid = range.lowerBound + k
            if m < k {
                walk(m, range.lowerBound..<mid)
                path.append(root(leafHashes: leafHashes[mid..<range.upperBound]))
            } else {
                walk(m - k, mid..<range.upperBound)
                path.append(root(leafHashes: leafHashes[range.lowerBound..<mid]))
            }
        }
        walk(index, 0..<leafHashes.count)
        return path
    }

    /// Checks an inclusion proof as RFC 9162 §2.1.3.2 describes.
    public static func verifyInclusion(
        leafHash: Hash256,
        index: Int,
        size: Int,
        proof: [Hash256],
        root: Hash256
    ) -> Bool {
        guard index >= 0, index < size else { return false }
        var fn = index
        var sn = size - 1
        var r = leafHash
        for p in proof {
            guard sn != 0 else { return false }
            if fn & 1 == 1 || fn == sn {
                r = nodeHash(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                r = nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && r == root
    }

    /// The consistency proof from the tree of the first `oldSize` leaves to the tree of all `leafHashes`.
    public static func consistencyProof(oldSize: Int, leafHashes: [Hash256]) -> [Hash256]? {
        guard oldSize >= 0, oldSize <= leafHashes.count else { return nil }
        guard oldSize > 0, oldSize < leafHashes.count else { return [] }
        var proof: [Hash256] = []
        func subproof(_ m: Int, _ range: Range<Int>, _ complete: Bool) {
            let n = range.count
            if m == n {
                if !complete { proof.append(root(leafHashes: leafHashes[range])) }
                return
            }
            let k = split(n)
            let mid = range.lowerBound + k
            if m <= k {
                subproof(m, range.lowerBound..<mid, complete)
                proof.append(root(leafHashes: leafHashes[mid..<range.upperBound]))
            } else {
                subproof(m - k, mid..<range.upperBound, false)
                proof.append(root(leafHashes: leafHashes[range.lowerBound..<mid]))
            }
        }
        subproof(oldSize, 0..<leafHashes.count, true)
        return proof
    }

    /// Checks a consistency proof as RFC 9162 §2.1.4.2 describes.
    public static func verifyConsistency(
        oldSize: Int,
        newSize: Int,
        oldRoot: Hash256,
        newRoot: Hash256,
        proof: [Hash256]
    ) -> Bool {
        guard oldSize >= 0, oldSize <= newSize else { return false }
        if oldSize == newSize { return proof.isEmpty && oldRoot == newRoot }
        if oldSize == 0 { return proof.isEmpty }
        guard !proof.isEmpty else { return false }
        var path = proof
        if oldSize & (oldSize - 1) == 0 { path.insert(oldRoot, at: 0) }
        var fn = oldSize - 1
        var sn = newSize - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var fr = path[0]
        var sr = path[0]
        for c in path.dropFirst() {
            guard sn != 0 else { return false }
            if fn & 1 == 1 || fn == sn {
                fr = nodeHash(c, fr)
                sr = nodeHash(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                sr = nodeHash(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        return fr == oldRoot && sr == newRoot && sn == 0
    }
}

extension Merkle {
    /// An append-only RFC 6962 tree that keeps every complete, aligned subtree hash, for the version log.
    ///
    /// `levels[h][i]` is the hash of leaves `i * 2^h ..< (i + 1) * 2^h`; level 0 holds the leaf hashes. Appending costs
    /// amortised O(1) hashes and the whole structure about two hashes (64 bytes) per leaf: 64 MB for a million leaves.
    /// The hash of any RFC 6962 subtree `[lo, hi)` that a proof needs is either one stored node (complete and aligned)
    /// or a complete left part plus a recursive right edge, so it costs O(log n) hashes, a root O(log n) and an
    /// inclusion or consistency proof O(log² n) hashes, at every size up to the current one.
    public struct Tree: Sendable {
        private var levels: [[Hash256]] = [[]]

        /// An empty tree.
        public init() {}

        /// A tree over `leafHashes`, in order.
        public init(leafHashes: some Sequence<Hash256>) {
            for leaf in leafHashes { append(leafHash: leaf) }
        }

        /// The number of leaves.
        public var count: Int { levels[0].count }

        /// The leaf hash at `index` (which must be below `count`).
        public func leafHash(at index: Int) -> Hash256 { levels[0][index] }

        /// Appends one leaf hash and returns its index; completes every subtree it closes.
        @discardableResult
        public mutating func append(leafHash: Hash256) -> Int {
            let index = levels[0].count
            levels[0].append(leafHash)
            var height = 0
            while levels[height].count % 2 == 0 {
                let n = levels[height].count
                let parent = nodeHash(levels[height][n - 2], levels[height][n - 1])
                if levels.count == height + 1 { levels.append([]) }
                levels[height + 1].append(parent)
                height += 1
            }
            return index
        }

        /// The root of the tree of the first `size` leaves (`0 <= size <= count`).
        public func root(size: Int) -> Hash256 {
            precondition(size >= 0 && size <= count, "size out of range")
            return size == 0 ? emptyRoot : subtree(0..<size)
        }

        /// The current root.
        public var root: Hash256 { root(size: count) }

        /// The RFC 9162 §2.1.3.1 inclusion path of leaf `index` in the tree of the first `size` leaves.
        public func inclusionProof(index: Int, size: Int) -> [Hash256]? {
            guard index >= 0, index < size, size <= count else { return nil }
            var path: [Hash256] = []
            var range = 0..<size
            var ranges: [Range<Int>] = []
            while range.count > 1 {
                let mid = range.lowerBound + split(range.count)
                if index < mid {
                    ranges.append(mid..<range.upperBound)
                    range = range.lowerBound..<mid
                } else {
                    ranges.append(range.lowerBound..<mid)
                    range = mid..<range.upperBound
                }
            }
            for sibling in ranges.reversed() { path.append(subtree(sibling)) }
            return path
        }

        /// The RFC 9162 §2.1.4.1 consistency proof from the first `oldSize` leaves to the first `newSize` leaves.
        public func consistencyProof(oldSize: Int, newSize: Int) -> [Hash256]? {
            guard oldSize >= 0, oldSize <= newSize, newSize <= count else { return nil }
            guard oldSize > 0, oldSize < newSize else { return [] }
            var proof: [Hash256] = []
            var m = oldSize
            var range = 0..<newSize
            var complete = true
            while m != range.count {
                let k = split(range.count)
                let mid = range.lowerBound + k
                if m <= k {
                    proof.append(subtree(mid..<range.upperBound))
                    range = range.lowerBound..<mid
                } else {
                    proof.append(subtree(range.lowerBound..<mid))
                    m -= k
                    range = mid..<range.upperBound
                    complete = false
                }
            }
            if !complete { proof.append(subtree(range)) }
            return proof.reversed()
        }

        /// MTH of leaves `range`: one stored node when the range is complete and aligned, else split as RFC 6962 does.
        private func subtree(_ range: Range<Int>) -> Hash256 {
            let n = range.count
            if n & (n - 1) == 0 {
                let height = n.trailingZeroBitCount
                if range.lowerBound % n == 0, height < levels.count, range.lowerBound / n < levels[height].count {
                    return levels[height][range.lowerBound / n]
                }
            }
            let mid = range.lowerBound + split(n)
            return nodeHash(subtree(range.lowerBound..<mid), subtree(mid..<range.upperBound))
        }
    }
}
