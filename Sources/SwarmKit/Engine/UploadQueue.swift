/// What one peer has asked this side to send and has not been sent yet: block requests and manifest pages, and the
/// cancels that match them (docs/protocol.md §7.2). No I/O: the swarm pushes what arrives and pops what its upload
/// loop takes, in the same order.
///
/// Every table is bounded by the protocol, never by what arrives:
/// - at most `maxBlocks` block requests wait; one more is a fault of the peer;
/// - at most `pageCount` manifest page requests wait (one more page is in flight at the most); one more is a fault;
/// - a cancel is kept only when it matches a request that waits, so there are never more cancels than requests.
///   Cancels of anything else are ignored (the block was sent already, or never asked for).
public struct UploadQueue: Sendable, Equatable {
    /// The most block requests that may wait: an honest peer keeps at most `Swarm.Options.maxPipelineDepth` (16)
    /// chunks requested from one source, each of at most `ChunkingParameters.largestAllowedMaxSize` (16 MiB), in
    /// blocks of `WireLimits.maxBlockLength` (128 KiB): 16 × 128 = 2048.
    public static let maxBlocks = 2048

    public enum Refusal: Error, Sendable, Equatable {
        /// More than `maxBlocks` block requests wait.
        case tooManyBlocks
        /// More manifest page requests wait than the manifest has pages.
        case tooManyPages(pageCount: Int)
    }

    /// Block requests that wait.
    public private(set) var blocks = 0
    /// Manifest page requests that wait.
    public private(set) var pages = 0
    private var waiting: [BlockRequest: Int] = [:]
    private var cancelled: [BlockRequest: Int] = [:]

    public init() {}

    /// Cancels that wait (each matches a waiting request).
    public var cancels: Int { cancelled.values.reduce(0, +) }

    /// A block request arrived.
    public mutating func push(_ block: BlockRequest) throws(Refusal) {
        guard blocks < Self.maxBlocks else { throw .tooManyBlocks }
        blocks += 1
        waiting[block, default: 0] += 1
    }

    /// A cancel arrived; returns whether it matched a waiting request (otherwise it is ignored).
    @discardableResult
    public mutating func cancel(_ block: BlockRequest) -> Bool {
        let pending = waiting[block] ?? 0
        guard (cancelled[block] ?? 0) < pending else { return false }
        cancelled[block, default: 0] += 1
        return true
    }

    /// The upload loop takes the oldest waiting request `block`; returns whether to serve it (false: it was
    /// cancelled).
    public mutating func pop(_ block: BlockRequest) -> Bool {
        guard let count = waiting[block] else { preconditionFailure("popped a block request that was never pushed") }
        blocks -= 1
        waiting[block] = count > 1 ? count - 1 : nil
        guard let cancels = cancelled[block] else { return true }
        cancelled[block] = cancels > 1 ? cancels - 1 : nil
        return false
    }

    /// A manifest page request arrived; the manifest has `pageCount` pages.
    public mutating func pushPage(pageCount: Int) throws(Refusal) {
        guard pages < pageCount else { throw .tooManyPages(pageCount: pageCount) }
        pages += 1
    }

    /// The upload loop takes a waiting page request.
    public mutating func popPage() {
        precondition(pages > 0, "popped a page request that was never pushed")
        pages -= 1
    }
}
