import ChunkStore
import Testing

@testable import SwarmKit

/// Whole swarms of pickers in discrete time: every node uploads a fixed number of chunks per tick, leechers keep a
/// few requests outstanding at every node that has something for them, and announce each chunk they complete.
struct SwarmSimulation {
    let chunkCount: Int
    var pickers: [String: PiecePicker<String>] = [:]
    var uploadQueues: [String: [(to: String, chunk: Int)]] = [:]
    var capacity: [String: Int] = [:]
    var sent: [String: Int] = [:]
    var sourcesOf: [String: Set<String>] = [:]
    var duplicates = 0
    var rng: EngineRandom
    let leechers: [String]
    let seeders: [String]
    let serverCapacity: Int

    init(chunkCount: Int, seeders: [String], leechers: [String], perTick: Int, serverPerTick: Int, seed: UInt64) {
        self.chunkCount = chunkCount
        self.leechers = leechers
        self.seeders = seeders
        self.serverCapacity = serverPerTick
        rng = EngineRandom(state: seed)
        for leecher in leechers {
            var picker = PiecePicker<String>(chunkCount: chunkCount)
            for seeder in seeders { picker.peerJoined(seeder, has: ChunkSet(count: chunkCount, full: true)) }
            for other in leechers where other != leecher { picker.peerJoined(other, has: ChunkSet(count: chunkCount)) }
            pickers[leecher] = picker
        }
        for node in seeders + leechers { capacity[node] = perTick }
        capacity["server"] = serverPerTick
    }

    var done: Bool { leechers.allSatisfy { pickers[$0]!.isComplete } }

    mutating func tick() {
        let depth = 3
        for leecher in leechers {
            var picker = pickers[leecher]!
            for node in seeders + leechers where node != leecher {
                let room = depth - picker.outstanding(for: .peer(node)).count
                for chunk in picker.next(for: node, limit: room, using: &rng) {
                    uploadQueues[node, default: []].append((leecher, chunk))
                }
            }
            if serverCapacity > 0 {
                let room = 2 - picker.outstanding(for: .server).count
                let busy = leechers.contains { !picker.outstanding(for: .peer($0)).isEmpty }
                let reserve = busy ? leechers.count * 2 : 0
                let stripe = (index: leechers.firstIndex(of: leecher)!, of: leechers.count)
                for chunk in picker.nextForServer(limit: room, stripe: stripe, reserve: reserve, using: &rng) {
                    uploadQueues["server", default: []].append((leecher, chunk))
                }
            }
            pickers[leecher] = picker
        }
        var deliveries: [(to: String, chunk: Int, from: String)] = []
        for (node, queue) in uploadQueues {
            let served = queue.prefix(capacity[node] ?? 0)
            uploadQueues[node] = Array(queue.dropFirst(served.count))
            for request in served { deliveries.append((request.to, request.chunk, node)) }
        }
        for delivery in deliveries {
            sent[delivery.from, default: 0] += 1
            var picker = pickers[delivery.to]!
            if picker.have.contains(delivery.chunk) {
                duplicates += 1
                continue
            }
            sourcesOf[delivery.to, default: []].insert(delivery.from)
            let source: PiecePicker<String>.Source = delivery.from == "server" ? .server : .peer(delivery.from)
            for cancel in picker.received(delivery.chunk, from: source) {
                let node: String
                switch cancel {
                case .peer(let p): node = p
                case .server: node = "server"
                }
                uploadQueues[node]?.removeAll { $0.to == delivery.to && $0.chunk == delivery.chunk }
            }
            pickers[delivery.to] = picker
            for other in leechers where other != delivery.to {
                pickers[other]!.peer(delivery.to, has: delivery.chunk)
            }
        }
    }
}

@Suite("Engine: swarm simulation")
struct EngineSimulationTests {
    @Test(arguments: [1, 2, 3])
    func oneSeederFiveLeechers(seed: UInt64) {
        var sim = SwarmSimulation(
            chunkCount: 256, seeders: ["seed"], leechers: (1...5).map { "l\($0)" }, perTick: 2, serverPerTick: 0,
            seed: seed)
        var ticks = 0
        while !sim.done, ticks < 2000 {
            sim.tick()
            ticks += 1
        }
        #expect(sim.done)
        // Lower bound: 5 copies must leave 6 uploaders of 2 chunks per tick, and the seeder must send one copy.
        let bound = max(256 / 2, 5 * 256 / (6 * 2))
        #expect(ticks < bound * 3 / 2, "took \(ticks) ticks, bound \(bound)")
        #expect(sim.sent["seed", default: 0] < 2 * 256)
        for leecher in sim.leechers { #expect(sim.sourcesOf[leecher, default: []].count > 1) }
        #expect(sim.duplicates < 5 * 10)
    }

    @Test(arguments: [1, 2, 3])
    func theServerAloneSendsAboutOneCopy(seed: UInt64) {
        var sim = SwarmSimulation(
            chunkCount: 200, seeders: [], leechers: (1...5).map { "l\($0)" }, perTick: 2, serverPerTick: 2,
            seed: seed)
        var ticks = 0
        while !sim.done, ticks < 3000 {
            sim.tick()
            ticks += 1
        }
        #expect(sim.done)
        let copies = Double(sim.sent["server", default: 0]) / 200
        #expect(copies <= 1.1, "server sent \(copies) copies")
    }
}

@Suite("Engine: pipelines, choking, super-seeding")
struct EngineSchedulingTests {
    @Test func pipelineDepthFollowsTheBandwidthDelayProduct() {
        var pipeline = RequestPipeline(minDepth: 2, maxDepth: 64, margin: 0)
        #expect(pipeline.depth(chunkSize: 1 << 20) == 2)
        // 100 MiB/s with 50 ms round trips: 5 MiB in flight, so 5 chunks of 1 MiB plus one being sent.
        var now = 0.0
        for i in 0..<50 {
            let requestedAt = now
            now += 0.01
            pipeline.arrived(bytes: 1 << 20, requestedAt: i == 0 ? requestedAt - 0.05 : now - 0.06, now: now)
        }
        let rate = pipeline.rate ?? 0
        #expect(abs(rate - 100 * 1024 * 1024) < 5 * 1024 * 1024)
        #expect(abs((pipeline.roundTrip ?? 0) - 0.05) < 0.005)
        #expect(pipeline.depth(chunkSize: 1 << 20) == 6)
        // A slow link keeps the minimum.
        var slow = RequestPipeline()
        slow.arrived(bytes: 1 << 20, requestedAt: 0, now: 10)
        #expect(slow.depth(chunkSize: 1 << 20) == 2)
        #expect(slow.isOverdue(bytes: 1 << 20, queuedAhead: 0, requestedAt: 10, now: 60))
        #expect(!slow.isOverdue(bytes: 1 << 20, queuedAhead: 0, requestedAt: 10, now: 20))
    }

    @Test func chokerUnchokesTheBestContributorsAndOneOptimistically() {
        var rng = EngineRandom(state: 9)
        var choker = Choker<String>(slots: 2, optimisticPeriod: 30, newcomerAge: 0)
        let peers = (0..<6).map {
            Choker<String>.PeerState(
                peer: "p\($0)", interested: $0 != 5, downloadRate: Double($0) * 100, uploadRate: Double(10 - $0),
                connectedAt: 0)
        }
        let unchoked = choker.unchoked(peers: peers, seeding: false, now: 100, using: &rng)
        #expect(unchoked.count == 3)
        #expect(unchoked.isSuperset(of: ["p4", "p3"]))
        #expect(!unchoked.contains("p5"))  // not interested
        let optimistic = choker.optimistic
        #expect(optimistic != nil && !["p3", "p4"].contains(optimistic!))
        // Seeding ranks by what peers take from us.
        let seeding = choker.unchoked(peers: peers, seeding: true, now: 101, using: &rng)
        #expect(seeding.isSuperset(of: ["p0", "p1"]))
        // The optimistic slot rotates over time across the choked peers.
        var seen = Set<String>()
        for t in 0..<20 {
            _ = choker.unchoked(peers: peers, seeding: false, now: 200 + Double(t) * 30, using: &rng)
            if let o = choker.optimistic { seen.insert(o) }
        }
        #expect(seen.count >= 2)
    }

    @Test(arguments: [1, 4]) func superSeederSendsEveryChunkOnceBeforeAnyTwice(offersPerPeer: Int) {
        var seeder = SuperSeeder<String>(chunkCount: 40)
        var has: [String: ChunkSet] = [:]
        let peers = (0..<4).map { "p\($0)" }
        for peer in peers { has[peer] = ChunkSet(count: 40) }
        var sentTwiceWhileUnsent = false
        var rounds = 0
        while seeder.isActive, rounds < 1000 {
            rounds += 1
            for peer in peers {
                guard seeder.isActive else { break }
                _ = seeder.nextOffers(for: peer, lacking: has[peer]!, limit: offersPerPeer)
                let offered = seeder.offers(for: peer)
                #expect(offered.count <= offersPerPeer)
                #expect((0..<40).filter { seeder.mayServe($0, to: peer) }.count == offered.count)
                // An unsent chunk is offered to one peer at a time.
                for other in peers where other != peer { #expect(seeder.offers(for: other).isDisjoint(with: offered)) }
                // The peer takes one offered chunk per round.
                guard let offer = offered.min() else { continue }
                if seeder.timesSent(offer) > 0 { sentTwiceWhileUnsent = true }
                seeder.sent(offer, to: peer)
                has[peer]!.insert(offer)
            }
        }
        #expect(!seeder.isActive)
        #expect(!sentTwiceWhileUnsent)
        #expect((0..<40).allSatisfy { seeder.timesSent($0) == 1 })
    }

    @Test func aPeerAloneWithTheSuperSeederIsOfferedSeveralChunksAtOnce() {
        var seeder = SuperSeeder<String>(chunkCount: 10)
        var has = ChunkSet(count: 10)
        let first = seeder.nextOffers(for: "p", lacking: has, limit: 4)
        #expect(Set(first).count == 4)
        // Topping up after one arrives adds one new offer; the three still outstanding stay offered.
        seeder.sent(first[0], to: "p")
        has.insert(first[0])
        let next = seeder.nextOffers(for: "p", lacking: has, limit: 4)
        #expect(next.count == 1 && !first.contains(next[0]))
        #expect(seeder.offers(for: "p") == Set(first.dropFirst() + next))
    }

    @Test func chunksPeersTookElsewhereEndSuperSeeding() {
        var seeder = SuperSeeder<String>(chunkCount: 10)
        // The peer took chunks 0...7 from the server: the seeder never offers them and ends after sending 8 and 9.
        var has = ChunkSet(count: 10)
        for index in 0..<8 {
            has.insert(index)
            seeder.seen(index)
        }
        #expect(seeder.isActive)
        var offered: [Int] = []
        while seeder.isActive {
            _ = seeder.nextOffers(for: "p", lacking: has)
            guard let offer = seeder.offers(for: "p").min() else { break }
            offered.append(offer)
            seeder.sent(offer, to: "p")
            has.insert(offer)
            seeder.seen(offer)  // the peer's own announcement of a chunk it was sent does not count twice
        }
        #expect(offered.sorted() == [8, 9])
        #expect(!seeder.isActive)
        #expect(seeder.timesSent(9) == 1)
    }
}
