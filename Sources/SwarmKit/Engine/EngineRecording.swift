public import ChunkStore

/// A recording of swarm engines at work: one `Line` per swarm's start (its header: everything its engine was made
/// with, the random seed included), then one per event fed to it, with its time and the actions that came out.
/// `harp-cli get --record-engine FILE` writes one (JSON, a line each); `EngineReplay` checks it.
public enum EngineRecording {
    /// What an engine was made with.
    public struct Header: Sendable, Equatable, Codable {
        public var root: Hash256
        public var chunking: ChunkingParameters
        public var expectedSize: Int64?
        public var localKey: [UInt8]
        public var options: SwarmEngine.Options
        public var seed: UInt64

        public init(
            root: Hash256, chunking: ChunkingParameters, expectedSize: Int64?, localKey: [UInt8],
            options: SwarmEngine.Options, seed: UInt64
        ) {
            self.root = root
            self.chunking = chunking
            self.expectedSize = expectedSize
            self.localKey = localKey
            self.options = options
            self.seed = seed
        }

        /// A fresh engine made the same way.
        public func engine() -> SwarmEngine {
            SwarmEngine(
                root: root, chunking: chunking, expectedSize: expectedSize, localKey: localKey, options: options,
                seed: seed)
        }
    }

    /// One line: a header, or an event with its time and actions, of swarm number `swarm`.
    public struct Line: Sendable, Equatable, Codable {
        public var swarm: Int
        public var header: Header?
        public var t: Double?
        public var event: EngineEvent?
        public var actions: [EngineAction]?

        public init(swarm: Int, header: Header) {
            self.swarm = swarm
            self.header = header
        }

        public init(swarm: Int, t: Double, event: EngineEvent, actions: [EngineAction]) {
            self.swarm = swarm
            self.t = t
            self.event = event
            self.actions = actions
        }
    }
}

/// Feeds a recording to fresh engines and compares every action with the recorded ones.
public struct EngineReplay: Sendable {
    public private(set) var swarms = 0
    public private(set) var events = 0
    public private(set) var actions = 0
    /// Events whose actions differ from the recording (or that name a swarm without a header).
    public private(set) var mismatches = 0
    /// The first few differences, described.
    public private(set) var differences: [String] = []
    private var engines: [Int: SwarmEngine] = [:]

    public init() {}

    /// True when every event gave exactly the recorded actions.
    public var identical: Bool { mismatches == 0 }

    public mutating func feed(_ line: EngineRecording.Line) {
        if let header = line.header {
            swarms += 1
            engines[line.swarm] = header.engine()
            return
        }
        guard let event = line.event, let t = line.t else { return }
        events += 1
        let recorded = line.actions ?? []
        actions += recorded.count
        guard var engine = engines[line.swarm] else {
            return differ("event \(events): swarm \(line.swarm) has no header")
        }
        let replayed = engine.handle(event, at: t)
        engines[line.swarm] = engine
        guard replayed != recorded else { return }
        let at =
            zip(replayed, recorded).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            ?? min(replayed.count, recorded.count)
        differ(
            "event \(events) (swarm \(line.swarm), t=\(t)): \(event): action \(at) differs: replayed "
                + "\(at < replayed.count ? "\(replayed[at])" : "nothing"), recorded "
                + "\(at < recorded.count ? "\(recorded[at])" : "nothing")")
    }

    private mutating func differ(_ text: String) {
        mismatches += 1
        if differences.count < 5 { differences.append(text) }
    }
}
