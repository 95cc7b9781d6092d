import ChunkStore

extension PiecePicker {
    mutating func addWanted(_ index: Int) {
        guard position[index] < 0 else { return }
        let a = Int(availabilityCounts[index])
        while buckets.count <= a { buckets.append([]) }
        position[index] = Int32(buckets[a].count)
        buckets[a].append(index)
    }

    mutating func removeWanted(_ index: Int) {
        let p = Int(position[index])
        guard p >= 0 else { return }
        let a = Int(availabilityCounts[index])
        let last = buckets[a].removeLast()
        if last != index {
            buckets[a][p] = last
            position[last] = Int32(p)
        }
        position[index] = -1
    }

    mutating func changeAvailability(_ index: Int, by delta: Int32) {
        let wanted = position[index] >= 0
        if wanted { removeWanted(index) }
        availabilityCounts[index] = max(0, availabilityCounts[index] + delta)
        if wanted { addWanted(index) }
    }

    mutating func markInFlight(_ index: Int, from source: Source) {
        removeWanted(index)
        if !(inFlight[index]?.contains(source) ?? false) { inFlight[index, default: []].append(source) }
        requested[source, default: []].insert(index)
    }

    /// The wanted chunk in `theirs` with the lowest availability (at least 1 when `theirs` is a peer's set), chosen at
    /// random among equals: a few random probes of the bucket, then a scan from a random start.
    func rarestWanted(in theirs: ChunkSet, using rng: inout some RandomNumberGenerator) -> Int? {
        // A small set (the few chunks a super-seeder offers, a peer that just joined) is scanned itself: looking for
        // its members in a bucket would cost up to the bucket's length per pick, quadratic over a large file.
        if theirs.cardinality < 256 {
            var best: [Int] = []
            var lowest = Int32.max
            for index in theirs where position[index] >= 0 {
                let availability = availabilityCounts[index]
                if availability < lowest {
                    lowest = availability
                    best = [index]
                } else if availability == lowest {
                    best.append(index)
                }
            }
            return best.randomElement(using: &rng)
        }
        for bucket in buckets where !bucket.isEmpty {
            if let pick = randomMember(of: bucket, in: theirs, using: &rng) { return pick }
        }
        return nil
    }

    /// Any wanted chunk in `theirs`, uniformly over the buckets' members (random-first phase).
    func randomWanted(in theirs: ChunkSet, using rng: inout some RandomNumberGenerator) -> Int? {
        let total = buckets.reduce(0) { $0 + $1.count }
        guard total > 0 else { return nil }
        for _ in 0..<8 {
            var k = Int.random(in: 0..<total, using: &rng)
            for bucket in buckets {
                if k < bucket.count {
                    if theirs.contains(bucket[k]) { return bucket[k] }
                    break
                }
                k -= bucket.count
            }
        }
        return nil
    }

    private func randomMember(
        of bucket: [Int], in theirs: ChunkSet, using rng: inout some RandomNumberGenerator
    ) -> Int? {
        for _ in 0..<4 {
            let candidate = bucket[Int.random(in: 0..<bucket.count, using: &rng)]
            if theirs.contains(candidate) { return candidate }
        }
        let start = Int.random(in: 0..<bucket.count, using: &rng)
        for offset in 0..<bucket.count {
            let candidate = bucket[(start + offset) % bucket.count]
            if theirs.contains(candidate) { return candidate }
        }
        return nil
    }

    /// In endgame, an in-flight chunk `theirs` has that `source` was not asked for, with the fewest requesters, and
    /// fewer than `endgameRequesters` unless it is `late`.
    func endgamePick(
        for source: Source, in theirs: ChunkSet, late: Set<Int> = [], using rng: inout some RandomNumberGenerator
    ) -> Int? {
        var best: [Int] = []
        var fewest = Int.max
        for (chunk, askers) in inFlight
        where (askers.count < Self.endgameRequesters || late.contains(chunk)) && theirs.contains(chunk)
            && !askers.contains(source)
        {
            if askers.count < fewest {
                fewest = askers.count
                best = [chunk]
            } else if askers.count == fewest {
                best.append(chunk)
            }
        }
        // The dictionary's order differs between processes: sort, so that the same random draw picks the same chunk.
        best.sort()
        return best.randomElement(using: &rng)
    }

    /// An unavailable wanted chunk in this fetcher's stripe, lowest first, or nil.
    func preferredUnavailable(_ stripe: (index: Int, of: Int)?) -> Int? {
        guard let stripe, stripe.of > 0, stripe.index >= 0, !buckets[0].isEmpty else { return nil }
        // The stripe's own indexes in order (a bucket can hold most of a large file: filtering it at every pick would
        // be quadratic over the file).
        return stride(from: stripe.index, to: chunkCount, by: stripe.of).first {
            position[$0] >= 0 && availabilityCounts[$0] == 0
        }
    }
}
