import ChunkStore

@testable import SwarmKit

/// A discrete-event simulation of a swarm that drives the real `SwarmEngine` of every node with virtual time: nodes
/// with uplink rates and a one-way latency, a web seed with its own rate, joins and departures. What the engines
/// decide is carried out here the way the shell would: control messages arrive after the latency, pieces leave each
/// uplink one block at a time (round robin over the links with requests waiting), server ranges are served one at a
/// time at the server's rate, chunks are "stored" on arrival (rejected when they come from a node that corrupts).
struct SwarmSimulator {
    /// One simulated device.
    struct NodeSpec {
        var name: String
        /// Uplink in bytes per second.
        var uplink: Double
        var seeds = false
        /// A seeder super-seeds (an origin) unless this is false (a peer that finished and stays).
        var superSeeds = true
        /// When it joins the swarm (connects to everyone there) and begins (seed or fetch).
        var joinAt: Double = 0
        /// It leaves once it has this fraction of the chunks (fetchers only).
        var leaveAtFraction: Double?
        /// Every chunk it uploads fails verification at the receiver.
        var corrupts = false
        /// It reconnects this long after being dropped (a persistent attacker).
        var reconnectAfter: Double?
        /// A fetcher that resumes: it has this fraction of the chunks (every other chunk) when its download opens.
        var resumedFraction: Double = 0
        /// A fetcher that may use the web seed (when the simulation has one).
        var useServer = true
    }

    struct Node {
        var spec: NodeSpec
        var engine: SwarmEngine
        var present = false
        var finishedAt: Double?
        /// For each of its links: the peer node and the peer's link.
        var links: [LinkID: (node: Int, link: LinkID)] = [:]
        var uploadQueues: [LinkID: [UploadItem]] = [:]
        var uploadOrder: [LinkID] = []
        var uplinkBusyUntil: Double = 0
        var uplinkScheduled = false
        var wakeAt: Double?
        var bytesUploaded: Int64 = 0
        var lastStoredAt: Double?
    }

    enum Event {
        case engine(node: Int, EngineEvent)
        case join(node: Int)
        case uplinkFree(node: Int)
        case serverFree
        case wake(node: Int, at: Double)
        case reconnect(Int, Int)
    }

    let manifest: Manifest
    var nodes: [Node] = []
    var queue = EventQueue<Event>()
    var now: Double = 0
    var nextLink: UInt64 = 0
    /// The web seed: rate in bytes per second (nil: no server), one-way latency, queue of ranges.
    let serverRate: Double?
    var serverQueue: [(node: Int, chunk: Int, length: Int)] = []
    var serverBusy = false
    var serverCurrent: (node: Int, chunk: Int, length: Int, start: Double)?
    var serverBytes: Int64 = 0
    /// The chunks the server sent whole, in the order they completed.
    var serverChunks: [Int] = []
    let latency: Double
    /// Pairs of nodes (lower index first) whose link goes through the signaling server's relay: their messages take
    /// twice the latency, and their pieces queue, after the sender's uplink, for the relay's uplink (`relayRate`,
    /// shared by every relayed link; nil: unlimited).
    var relayedPairs: Set<[Int]> = []
    var relayRate: Double?
    /// Whether the engines are told which links are relayed (false: the engine before it knew, for comparison).
    var enginesKnowRelayed = true
    var relayBusyUntil: Double = 0
    /// Piece bytes that crossed the relay.
    var relayedBytes: Int64 = 0
    /// Full copies of each chunk that node `observed` uploaded, in the order they completed (for super-seeding).
    var chunkUploads: [Int: [Int]] = [:]
    var chunkUploadLog: [Int: [(chunk: Int, at: Double, to: Int)]] = [:]
    var superSeedingEnded: [Int: Double] = [:]
    var events = 0
    var failures: [Int: EngineFailure] = [:]
    /// The longest time any fetcher that stays went without storing a chunk.
    var longestStall: Double = 0

    init(
        chunks: Int, chunkSize: Int = 1 << 20, nodes specs: [NodeSpec], serverRate: Double?, latency: Double = 0.01,
        seed: UInt64 = 0
    ) {
        var refs: [ChunkRef] = []
        for index in 0..<chunks {
            var bytes = [UInt8](repeating: 0, count: 32)
            withUnsafeBytes(of: UInt64(index).bigEndian) { bytes.replaceSubrange(0..<8, with: $0) }
            refs.append(ChunkRef(hash: Hash256(bytes: bytes)!, length: chunkSize))
        }
        manifest = try! Manifest(parameters: .default, chunks: refs)
        self.serverRate = serverRate
        self.latency = latency
        let root = manifest.root
        for (index, spec) in specs.enumerated() {
            var options = SwarmEngine.Options()
            options.superSeed = spec.seeds && spec.superSeeds
            options.useServer = serverRate != nil && spec.useServer
            var key = [UInt8](repeating: 0, count: 32)
            key[0] = UInt8(index + 1)
            let engine = SwarmEngine(
                root: root, chunking: .default, expectedSize: manifest.size, localKey: key, options: options,
                seed: seed &* 1000 &+ UInt64(index + 1))
            nodes.append(Node(spec: spec, engine: engine))
            queue.push(at: spec.joinAt, .join(node: index))
        }
    }

    var fileSize: Int64 { manifest.size }

    /// Runs until every fetcher that stays has finished, or `limit` seconds of virtual time pass.
    mutating func run(limit: Double = 3600) {
        while let (time, event) = queue.pop() {
            guard time <= limit else { break }
            now = time
            events += 1
            handle(event)
            if fetchersDone { break }
        }
    }

    var fetchersDone: Bool {
        nodes.allSatisfy { $0.spec.seeds || $0.spec.leaveAtFraction != nil || $0.spec.corrupts || $0.finishedAt != nil }
    }

    /// When the last fetcher that stays finished.
    var lastFinish: Double? {
        let stayers = nodes.filter { !$0.spec.seeds && $0.spec.leaveAtFraction == nil && !$0.spec.corrupts }
        return stayers.allSatisfy { $0.finishedAt != nil } ? stayers.compactMap(\.finishedAt).max() : nil
    }

    // MARK: Events

    private mutating func handle(_ event: Event) {
        switch event {
        case .join(let index): join(index)
        case .engine(let index, let event):
            guard nodes[index].present else { return }
            feed(index, event)
        case .uplinkFree(let index):
            nodes[index].uplinkScheduled = false
            serveUplink(index)
        case .serverFree: serverFinished()
        case .reconnect(let a, let b):
            guard nodes[a].present, nodes[b].present, !nodes[a].links.values.contains(where: { $0.node == b }) else {
                return
            }
            connect(a, b)
        case .wake(let index, let at):
            guard nodes[index].present, nodes[index].wakeAt == at else { return }
            nodes[index].wakeAt = nil
            feed(index, .tick)
        }
    }

    private mutating func join(_ index: Int) {
        guard !nodes[index].present else { return }
        nodes[index].present = true
        if nodes[index].spec.seeds {
            feed(index, .seed(manifest))
        } else if !nodes[index].spec.corrupts {
            feed(index, .fetch(manifest: manifest, server: serverRate != nil && nodes[index].spec.useServer))
        } else {
            feed(index, .seed(manifest))
        }
        for other in nodes.indices where other != index && nodes[other].present {
            connect(index, other)
        }
    }

    private mutating func connect(_ a: Int, _ b: Int) {
        nextLink += 1
        let linkA = LinkID(nextLink)
        nextLink += 1
        let linkB = LinkID(nextLink)
        nodes[a].links[linkA] = (b, linkB)
        nodes[b].links[linkB] = (a, linkA)
        feed(a, .connected(peer(b, link: linkA, initiatedByUs: true)))
        feed(b, .connected(peer(a, link: linkB, initiatedByUs: false)))
    }

    private func peer(_ index: Int, link: LinkID, initiatedByUs: Bool) -> ConnectedPeer {
        let other = nodes.indices.first { nodes[$0].links[link] != nil } ?? index
        return ConnectedPeer(
            link: link, deviceKey: nodes[index].engine.localKey, initiatedByUs: initiatedByUs,
            // An origin says so in its hello; so does a fetcher whose finished fetch made it one (`becomeOrigin`).
            superSeeding: nodes[index].spec.seeds && nodes[index].spec.superSeeds
                || nodes[index].engine.superSeeder != nil, listenAddress: nil,
            relayed: enginesKnowRelayed && isRelayed(index, other))
    }

    /// Whether the link between two nodes goes through the relay.
    func isRelayed(_ a: Int, _ b: Int) -> Bool { relayedPairs.contains([min(a, b), max(a, b)]) }

    /// The one-way latency between two nodes (through the relay: there and on).
    func latency(_ a: Int, _ b: Int) -> Double { isRelayed(a, b) ? 2 * latency : latency }

    private mutating func leave(_ index: Int) {
        nodes[index].present = false
        for link in nodes[index].links.keys.sorted() {
            guard let peer = nodes[index].links[link] else { continue }
            nodes[peer.node].links[peer.link] = nil
            nodes[peer.node].uploadQueues[peer.link] = nil
            feed(peer.node, .disconnected(peer.link))
        }
        nodes[index].links.removeAll()
        nodes[index].uploadQueues.removeAll()
        serverQueue.removeAll { $0.node == index }
    }

    // MARK: Engines

    private mutating func feed(_ index: Int, _ event: EngineEvent) {
        guard nodes[index].present else { return }
        if case .stored = event, nodes[index].spec.leaveAtFraction == nil, nodes[index].finishedAt == nil {
            longestStall = max(longestStall, now - (nodes[index].lastStoredAt ?? nodes[index].spec.joinAt))
            nodes[index].lastStoredAt = now
        }
        let actions = nodes[index].engine.handle(event, at: now)
        for action in actions { perform(action, at: index) }
        if let fraction = nodes[index].spec.leaveAtFraction, nodes[index].present,
            let have = nodes[index].engine.have,
            Double(have.cardinality) >= fraction * Double(manifest.chunks.count)
        {
            leave(index)
        }
    }

    private mutating func perform(_ action: EngineAction, at index: Int) {
        switch action {
        case .send(let link, let messages):
            guard let peer = nodes[index].links[link] else { return }
            for message in messages {
                queue.push(
                    at: now + latency(index, peer.node), .engine(node: peer.node, .received(peer.link, message.inbound))
                )
            }
        case .close(let link, _):
            guard let peer = nodes[index].links.removeValue(forKey: link) else {
                return queue.push(at: now, .engine(node: index, .disconnected(link)))
            }
            nodes[index].uploadQueues[link] = nil
            nodes[peer.node].links[peer.link] = nil
            nodes[peer.node].uploadQueues[peer.link] = nil
            queue.push(at: now, .engine(node: index, .disconnected(link)))
            queue.push(at: now + latency, .engine(node: peer.node, .disconnected(peer.link)))
            let attacker = nodes[index].spec.corrupts ? index : peer.node
            if let after = nodes[attacker].spec.reconnectAfter {
                queue.push(at: now + after, .reconnect(attacker, attacker == index ? peer.node : index))
            }
        case .queueUpload(let link, let item):
            if nodes[index].uploadQueues[link] == nil { nodes[index].uploadOrder.append(link) }
            nodes[index].uploadQueues[link, default: []].append(item)
            serveUplink(index)
        case .serveBlock, .servePage, .keepBlock, .discard, .handOver, .discovered, .manifestReady:
            if case .manifestReady = action {
                let count = manifest.chunks.count
                let kept = Int(nodes[index].spec.resumedFraction * Double(count))
                let have = ChunkSet(count: count, indexes: (0..<count).filter { $0 % 2 == 0 }.prefix(kept))
                queue.push(at: now, .engine(node: index, .opened(have: have, localBytes: 0)))
            }
        case .store(let chunk, let source):
            var bad = false
            if case .peer(let link) = source, let peer = nodes[index].links[link] {
                bad = nodes[peer.node].spec.corrupts
            }
            queue.push(
                at: now,
                .engine(node: index, bad ? .rejected(chunk: chunk, from: source) : .stored(chunk: chunk, from: source)))
        case .fetchRange(let chunk, _, let length):
            serverQueue.append((index, chunk, length))
            startServer()
        case .cancelRange(let chunk):
            serverQueue.removeAll { $0.node == index && $0.chunk == chunk }
            if let current = serverCurrent, current.node == index, current.chunk == chunk, let rate = serverRate {
                serverBytes += Int64(min(Double(current.length), (now - current.start) * rate))
                serverCurrent = nil
                serverBusy = false
                serverGeneration += 1
                startServer()
            }
        case .finished:
            nodes[index].finishedAt = now
            // As the shell does once the file is renamed into place: it stays, serving from the store.
            queue.push(at: now, .engine(node: index, .fetchFinished))
        case .failed(let failure):
            failures[index] = failure
        case .wake(let at):
            nodes[index].wakeAt = at
            queue.push(at: at, .wake(node: index, at: at))
        case .log:
            break
        }
    }

    /// Sends the next waiting item of one of the node's links, round robin, at the uplink's rate.
    private mutating func serveUplink(_ index: Int) {
        guard nodes[index].present, !nodes[index].uplinkScheduled, now >= nodes[index].uplinkBusyUntil else { return }
        var node = nodes[index]
        // Until a block or page leaves: every turn takes an item or drops a link with none, so this ends. (It took
        // one item per link and stopped: when each was a request the peer had cancelled, the requests behind them
        // waited for the next arrival, which never came, and a swarm stalled on its last chunk.)
        while !node.uploadOrder.isEmpty {
            let link = node.uploadOrder.removeFirst()
            guard var items = node.uploadQueues[link], !items.isEmpty, let peer = node.links[link] else {
                node.uploadQueues[link] = nil
                continue
            }
            let item = items.removeFirst()
            node.uploadQueues[link] = items
            node.uploadOrder.append(link)
            nodes[index] = node
            let actions = nodes[index].engine.handle(.uploadTaken(link, item), at: now)
            var bytes = 0
            var arrival: EngineEvent?
            var sent: BlockRequest?
            for action in actions {
                switch action {
                case .serveBlock(link, let block, _):
                    bytes = Int(block.length)
                    arrival = .received(peer.link, .piece(chunk: block.chunk, offset: block.offset, length: bytes))
                    sent = block
                case .servePage(link, let page):
                    let message = ManifestAssembler.page(page, of: manifest)
                    bytes = message.entries.count * 36 + 32
                    arrival = .received(peer.link, .manifestPage(message))
                default:
                    perform(action, at: index)
                }
            }
            guard let arrival else {
                node = nodes[index]
                continue
            }
            let done = now + Double(bytes) / nodes[index].spec.uplink
            nodes[index].uplinkBusyUntil = done
            nodes[index].uplinkScheduled = true
            nodes[index].bytesUploaded += Int64(bytes)
            if isRelayed(index, peer.node) {
                // The relay forwards it on its own uplink, after what it forwards already.
                relayBusyUntil = max(done, relayBusyUntil) + (relayRate.map { Double(bytes) / $0 } ?? 0)
                if sent != nil { relayedBytes += Int64(bytes) }
                queue.push(at: relayBusyUntil + 2 * latency, .engine(node: peer.node, arrival))
            } else {
                queue.push(at: done + latency, .engine(node: peer.node, arrival))
            }
            if let sent {
                queue.push(at: done, .engine(node: index, .blockSent(link, sent)))
                if Int(sent.offset) + Int(sent.length) == manifest.chunks[Int(sent.chunk)].length {
                    chunkUploads[index, default: []].append(Int(sent.chunk))
                    chunkUploadLog[index, default: []].append((Int(sent.chunk), now, peer.node))
                    if nodes[index].engine.snapshot.superSeeding == false, superSeedingEnded[index] == nil {
                        superSeedingEnded[index] = now
                    }
                }
            }
            queue.push(at: done, .uplinkFree(node: index))
            return
        }
        nodes[index] = node
    }

    var serverGeneration = 0

    private mutating func startServer() {
        guard let rate = serverRate, !serverBusy, !serverQueue.isEmpty else { return }
        let next = serverQueue.removeFirst()
        serverBusy = true
        serverCurrent = (next.node, next.chunk, next.length, now)
        serverGeneration += 1
        queue.push(at: now + Double(next.length) / rate, .serverFree)
        pendingGeneration = serverGeneration
    }

    var pendingGeneration = 0

    private mutating func serverFinished() {
        guard let current = serverCurrent, pendingGeneration == serverGeneration else { return }
        serverCurrent = nil
        serverBusy = false
        serverBytes += Int64(current.length)
        serverChunks.append(current.chunk)
        queue.push(at: now + latency, .engine(node: current.node, .serverDone(chunk: current.chunk)))
        startServer()
    }
}

extension OutboundMessage {
    /// The message as the receiving engine sees it.
    var inbound: InboundMessage {
        switch self {
        case .choke: .choke
        case .unchoke: .unchoke
        case .interested: .interested
        case .notInterested: .notInterested
        case .bitfield(let bitfield): .bitfield(bitfield)
        case .have(let chunk): .have(chunk: chunk)
        case .request(let block): .request(block)
        case .cancel(let block): .cancel(block)
        case .manifestRequest(let page): .manifestRequest(page: page)
        case .peerExchange(let addresses): .peerExchange(addresses)
        }
    }
}

/// A priority queue of timed events (a binary heap; equal times keep their insertion order).
struct EventQueue<Element> {
    private var heap: [(time: Double, seq: Int, element: Element)] = []
    private var seq = 0

    var isEmpty: Bool { heap.isEmpty }

    mutating func push(at time: Double, _ element: Element) {
        seq += 1
        heap.append((time, seq, element))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard less(child, parent) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (Double, Element)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count, less(left, smallest) { smallest = left }
            if right < heap.count, less(right, smallest) { smallest = right }
            guard smallest != parent else { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        return (top.time, top.element)
    }

    private func less(_ a: Int, _ b: Int) -> Bool {
        (heap[a].time, heap[a].seq) < (heap[b].time, heap[b].seq)
    }
}
