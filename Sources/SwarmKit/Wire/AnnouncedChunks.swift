/// The chunks this side has announced to one peer (its `bitfield` and later `have`s).
///
/// `PeerProtocolHandler` updates it from outbound messages and refuses an inbound `request` for a chunk
/// not in it (goodbye `chunk-not-announced`, docs/protocol.md §6); the engine can read it too.
public struct AnnouncedChunks: Sendable, Equatable {
    private var bitfield: Bitfield?
    private var extra: Set<UInt32> = []

    public init() {}

    /// Records an outbound `bitfield` or `have`; other messages change nothing.
    public mutating func record(_ message: WireMessage) {
        switch message {
        case .bitfield(let announced):
            bitfield = announced
            extra.removeAll()
        case .have(let chunk):
            if var current = bitfield, chunk < current.chunkCount {
                current.insert(chunk)
                bitfield = current
            } else {
                extra.insert(chunk)
            }
        default:
            break
        }
    }

    /// Whether chunk `index` was announced.
    public func contains(_ index: UInt32) -> Bool {
        (bitfield?.contains(index) ?? false) || extra.contains(index)
    }
}
