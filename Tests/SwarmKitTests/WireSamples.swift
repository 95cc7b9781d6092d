import NIOCore

@testable import SwarmKit

/// One message of every kind, with fields near their limits.
enum WireSamples {
    static var all: [WireMessage] {
        var bitfield = Bitfield(chunkCount: 13)
        bitfield.insert(0)
        bitfield.insert(12)
        let entries = (0..<3).map {
            ManifestEntry(hash: [UInt8](repeating: UInt8($0), count: 32), length: 1_048_576 + UInt32($0))
        }
        return [
            .hello(Hello(capabilities: 0x8000_0000_0000_0001, deviceKey: Array(0..<32), listenPort: 7448)),
            .keepAlive,
            .goodbye(.chunkNotAnnounced),
            .goodbye(GoodbyeReason(rawValue: 999)),
            .choke, .unchoke, .interested, .notInterested,
            .bitfield(bitfield),
            .bitfield(Bitfield(chunkCount: 0)),
            .have(chunk: 0xFFFF_FFFF),
            .request(BlockRequest(chunk: 5, offset: 65536, length: WireLimits.maxBlockLength)),
            .piece(Piece(chunk: 5, offset: 0, data: ByteBuffer(bytes: [UInt8](repeating: 0xAB, count: 300)))),
            .piece(Piece(chunk: 1, offset: 7, data: ByteBuffer(bytes: [1]))),
            .cancel(BlockRequest(chunk: 5, offset: 65536, length: 1)),
            .manifestRequest(page: 3),
            .manifestPage(ManifestPage(page: 0, pageCount: 2, fileSize: 3_145_731, chunkCount: 3, entries: entries)),
            .peerExchange([PeerAddress(ip: [127, 0, 0, 1], port: 1)!, PeerAddress(ip: Array(0..<16), port: 65535)!]),
            .peerExchange([]),
            .attach(
                Attach(
                    channel: WireLimits.maxChannels - 1, swarmID: Array(0..<32), capabilities: .max,
                    proof: Array(repeating: 0xEE, count: 32))),
            .attached(Attached(channel: 1, capabilities: 0, proof: Array(32..<64))),
            .detach(channel: 0, reason: .notServed),
            .channel(WireLimits.maxChannels - 1),
        ]
    }

    /// All samples back to back as one byte stream.
    static var stream: ByteBuffer {
        var buffer = ByteBuffer()
        for message in all {
            var encoded = message.encoded()
            buffer.writeBuffer(&encoded)
        }
        return buffer
    }
}
