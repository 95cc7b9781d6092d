import ChunkStore
import Testing

@testable import SwarmKit

/// Chunks waiting to be verified and written are bounded: while their bytes reach `SwarmEngine.maxStoringBytes`, no
/// peer is asked for more, so a disk (or a hashing thread) slower than the network cannot make chunks pile up in
/// memory. Before the bound, a 2 GiB loopback fetch peaked at 300-640 MiB of RSS.
@Suite("Engine: the backlog of chunks to store")
struct EngineStoringBacklogTests {
    static let chunkLength = 1 << 20
    static let chunkCount = 200

    static func engineWithASeeder() throws -> (SwarmEngine, LinkID) {
        var (engine, link, _) = try EngineHostileInputTests.fetchingEngine(
            chunkCount: chunkCount, chunkLength: chunkLength)
        _ = engine.handle(.received(link, .bitfield(ChunkSet(count: chunkCount, full: true).bitfield)), at: 0)
        return (engine, link)
    }

    /// Answers every request at once, block by block, until no request is left, and returns the chunks handed over
    /// to be stored.
    static func answerEverything(
        _ engine: inout SwarmEngine, link: LinkID, first: [EngineAction], time: inout Double
    ) -> [Int] {
        var queue = EngineOverdueTests.requests(first, to: link)
        var stored: [Int] = []
        while !queue.isEmpty {
            let block = queue.removeFirst()
            time += 0.0002
            let actions = engine.handle(
                .received(link, .piece(chunk: block.chunk, offset: block.offset, length: Int(block.length))), at: time)
            queue += EngineOverdueTests.requests(actions, to: link)
            stored += actions.compactMap { if case .store(let chunk, .peer(link)) = $0 { chunk } else { nil } }
        }
        return stored
    }

    @Test func requestsPauseWhileTheChunksToStoreReachTheBound() throws {
        var (engine, link) = try Self.engineWithASeeder()
        var time = 0.0
        let first = engine.handle(.received(link, .unchoke), at: time)
        // The shell never reports a chunk written: the requests stop once the backlog is full, with what was
        // already asked still arriving (the pipeline, at most `maxPipelineDepth` chunks).
        let handedOver = Self.answerEverything(&engine, link: link, first: first, time: &time)
        let bound = SwarmEngine.maxStoringBytes / Self.chunkLength
        #expect(handedOver.count >= bound)
        #expect(handedOver.count <= bound + SwarmEngine.Options().maxPipelineDepth)
        #expect(handedOver.count < Self.chunkCount)
        #expect(engine.storingBytes == handedOver.count * Self.chunkLength)

        // Writes finishing free room: the requests resume, and the whole file arrives.
        var written = 0
        var resumed: [EngineAction] = []
        while EngineOverdueTests.requests(resumed, to: link).isEmpty, written < handedOver.count {
            time += 0.001
            resumed = engine.handle(.stored(chunk: handedOver[written], from: .peer(link)), at: time)
            written += 1
        }
        #expect(engine.storingBytes < SwarmEngine.maxStoringBytes)
        #expect(written == handedOver.count - bound + 1)
        var pending = Array(handedOver[written...])
        pending += Self.answerEverything(&engine, link: link, first: resumed, time: &time)
        while !pending.isEmpty {
            time += 0.001
            let actions = engine.handle(.stored(chunk: pending.removeFirst(), from: .peer(link)), at: time)
            pending += Self.answerEverything(&engine, link: link, first: actions, time: &time)
            #expect(engine.storingBytes <= (bound + SwarmEngine.Options().maxPipelineDepth) * Self.chunkLength)
        }
        #expect(engine.have?.isFull ?? false)
        #expect(engine.storingBytes == 0)
    }
}
