// harp-wire-bench: figures for docs/benchmarks.md ("Wire") (driven by bench/wire/run.sh).
//
//   harp-wire-bench aead [seconds]                  seal, seal+open of 64 KiB frames: ChaChaPoly, AESGCM
//                                                   (BoringSSL's EVP interface), AESGCM-swift-crypto and
//                                                   AESGCM-libsodium side by side
//   harp-wire-bench receive noise|plain             listen on 127.0.0.1:0, print the port, count bytes
//   harp-wire-bench send noise|plain PORT BYTES     connect and send BYTES in 128 KiB blocks
import Crypto
import Foundation
import NIOCore
import NIOPosix
import SwarmKit

@main
struct WireBench {
    static func main() async throws {
        let arguments = CommandLine.arguments.dropFirst()
        switch arguments.first {
        case "aead":
            try aead(seconds: Double(arguments.dropFirst().first ?? "3") ?? 3)
        case "receive":
            try await receive(noise: arguments.dropFirst().first == "noise")
        case "send":
            let rest = Array(arguments.dropFirst())
            guard rest.count == 3, let port = Int(rest[1]), let bytes = Int(rest[2]) else { usage() }
            try await send(noise: rest[0] == "noise", port: port, bytes: bytes)
        default:
            usage()
        }
    }

    static func usage() -> Never {
        FileHandle.standardError.write(
            Data("usage: harp-wire-bench aead [seconds] | receive noise|plain | send noise|plain PORT BYTES\n".utf8))
        exit(2)
    }

    /// The swarm key both benchmark processes use (a benchmark constant, not a secret).
    static var benchKey: SecureBytes {
        SwarmKeys(contentRoot: Array(repeating: 0x42, count: 32), salt: Array(repeating: 0x24, count: 32)).swarmKey
    }

    /// One AEAD variant under measurement: `run` processes one 64 KiB frame.
    struct Variant {
        let name: String
        let run: () throws -> Void
        var frames = 0
        var nanoseconds: UInt64 = 0
    }

    /// Seals (and opens) 64 KiB frames with each variant. The variants take turns in slices of about 0.1 s of this
    /// thread's CPU time, and the rates are bytes per CPU second: on a shared machine the wall clock measures the
    /// other processes too, and taking turns makes what is left (cache, frequency) fall on all variants alike.
    static func aead(seconds: Double) throws {
        let frame = [UInt8](repeating: 0xA5, count: NoiseTransport.maxPlaintextLength)
        var sealed = [UInt8](repeating: 0, count: frame.count + NoiseCipher.tagLength)
        var opened = [UInt8](repeating: 0, count: frame.count)
        var variants: [Variant] = []
        for cipher in NoiseCipher.allCases where cipher.isAvailable {
            // Through NoiseTransport, as sessions use it: libsodium for ChaChaPoly, BoringSSL's EVP interface for AESGCM.
            var (sealer, _) = try NoiseTransport.makeInMemoryPair(cipher: cipher)
            variants.append(
                Variant(name: "\(cipher.rawValue) seal") {
                    try frame.withUnsafeBytes { p in
                        try sealed.withUnsafeMutableBytes { try sealer.seal(p, into: $0) }
                    }
                })
            var (sender, receiver) = try NoiseTransport.makeInMemoryPair(cipher: cipher)
            variants.append(
                Variant(name: "\(cipher.rawValue) seal+open") {
                    try frame.withUnsafeBytes { p in
                        try sealed.withUnsafeMutableBytes { try sender.seal(p, into: $0) }
                    }
                    try sealed.withUnsafeBytes { c in
                        try opened.withUnsafeMutableBytes { try receiver.open(c, into: $0) }
                    }
                })
        }
        if AESGCMReference.isAvailable {
            // libsodium's AES-256-GCM, the transport AEAD before swift-crypto's, with the same frames and the
            // Noise nonce layout (4 zero bytes, the counter big-endian).
            let key = [UInt8](repeating: 0x3C, count: 32)
            var sealCounter: UInt64 = 0
            var counter: UInt64 = 0
            func nonce(_ counter: UInt64) -> [UInt8] {
                [0, 0, 0, 0] + (0..<8).map { UInt8(truncatingIfNeeded: counter >> (56 - 8 * $0)) }
            }
            let empty = UnsafeRawBufferPointer(start: nil, count: 0)
            variants.append(
                Variant(name: "AESGCM-libsodium seal") {
                    let n = nonce(sealCounter)
                    key.withUnsafeBytes { k in
                        n.withUnsafeBytes { n in
                            frame.withUnsafeBytes { p in
                                sealed.withUnsafeMutableBytes {
                                    AESGCMReference.seal(key: k, nonce: n, ad: empty, plaintext: p, into: $0)
                                }
                            }
                        }
                    }
                    sealCounter += 1
                })
            variants.append(
                Variant(name: "AESGCM-libsodium seal+open") {
                    let n = nonce(counter)
                    try key.withUnsafeBytes { k in
                        try n.withUnsafeBytes { n in
                            frame.withUnsafeBytes { p in
                                sealed.withUnsafeMutableBytes {
                                    AESGCMReference.seal(key: k, nonce: n, ad: empty, plaintext: p, into: $0)
                                }
                            }
                            try sealed.withUnsafeBytes { c in
                                try opened.withUnsafeMutableBytes {
                                    try AESGCMReference.open(key: k, nonce: n, ad: empty, ciphertext: c, into: $0)
                                }
                            }
                        }
                    }
                    counter += 1
                })
        }
        // swift-crypto's AES.GCM as sessions used it before the EVP interface: a key and a BoringSSL context per frame, the
        // plaintext read in place, the sealed box copied out; opening copies the frame into a `SealedBox` and the
        // plaintext out of a `Data`.
        let gcmKey = SymmetricKey(size: .bits256)
        var gcmCounter: UInt64 = 0
        func gcmNonce(_ counter: UInt64) throws -> AES.GCM.Nonce {
            try AES.GCM.Nonce(data: [0, 0, 0, 0] + (0..<8).map { UInt8(truncatingIfNeeded: counter >> (56 - 8 * $0)) })
        }
        func gcmSeal() throws {
            let box = try frame.withUnsafeBytes { try AES.GCM.seal($0, using: gcmKey, nonce: try gcmNonce(gcmCounter)) }
            box.combined!.withUnsafeBytes { bytes in
                sealed.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[12...])) }
            }
        }
        variants.append(
            Variant(name: "AESGCM-swift-crypto seal") {
                try gcmSeal()
                gcmCounter += 1
            })
        variants.append(
            Variant(name: "AESGCM-swift-crypto seal+open") {
                try gcmSeal()
                let tagStart = sealed.count - NoiseCipher.tagLength
                let plaintext = try sealed.withUnsafeBytes { c in
                    let box = try AES.GCM.SealedBox(
                        nonce: try gcmNonce(gcmCounter), ciphertext: UnsafeRawBufferPointer(rebasing: c[0..<tagStart]),
                        tag: UnsafeRawBufferPointer(rebasing: c[tagStart...]))
                    return try AES.GCM.open(box, using: gcmKey)
                }
                opened.withUnsafeMutableBytes { out in plaintext.withUnsafeBytes { out.copyMemory(from: $0) } }
                gcmCounter += 1
            })
        // swift-crypto's allocating API from a `Data` (a copy of the frame per call), the sealed box not copied
        // out: what the earlier figures measured, for comparison with the in-place path above.
        let key = SymmetricKey(size: .bits256)
        variants.append(
            Variant(name: "swift-crypto-ChaChaPoly-Data seal") { _ = try ChaChaPoly.seal(Data(frame), using: key) })
        variants.append(
            Variant(name: "swift-crypto-AESGCM-Data seal") { _ = try AES.GCM.seal(Data(frame), using: key) })

        let slice = UInt64(100_000_000)  // 0.1 s
        let rounds = max(1, Int(seconds * 1e9) / Int(slice) / variants.count)
        for _ in 0..<rounds {
            for index in variants.indices {
                let start = threadCPUNanoseconds()
                var elapsed: UInt64 = 0
                while elapsed < slice {
                    for _ in 0..<16 { try variants[index].run() }
                    variants[index].frames += 16
                    elapsed = threadCPUNanoseconds() - start
                }
                variants[index].nanoseconds += elapsed
            }
        }
        for variant in variants {
            let mbps = Double(variant.frames * frame.count) / Double(variant.nanoseconds) * 1e3
            emit(
                "aead \(variant.name) \(String(format: "%.0f", mbps)) MB/s (per CPU second, frames of \(frame.count) bytes)"
            )
        }
        emit("aead preferred \(NoiseCipher.preferred.rawValue)")
    }

    /// This thread's CPU time (user + system).
    static func threadCPUNanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    static func receive(noise: Bool) async throws {
        if noise {
            var configuration = PeerConfiguration(identity: .generate(), swarmKey: benchKey)
            configuration.enforceAnnouncements = false
            let listener = try await PeerListener.bind(host: "127.0.0.1", port: 0, configuration: configuration)
            emit("port \(listener.localAddress?.port ?? 0)")
            try await listener.run { connection in
                var bytes = 0
                let start = DispatchTime.now().uptimeNanoseconds
                try await connection.channel.executeThenClose { inbound, _ in
                    for try await message in inbound {
                        if case .piece(let piece) = message { bytes += piece.data.readableBytes }
                    }
                }
                report(bytes: bytes, since: start, label: "noise-\(connection.session.cipher.rawValue)")
                try await listener.close()
            }
        } else {
            let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(host: "127.0.0.1", port: 0) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            emit("port \(server.channel.localAddress?.port ?? 0)")
            try await server.executeThenClose { inbound in
                for try await connection in inbound {
                    var bytes = 0
                    let start = DispatchTime.now().uptimeNanoseconds
                    try await connection.executeThenClose { data, _ in
                        for try await buffer in data { bytes += buffer.readableBytes }
                    }
                    report(bytes: bytes, since: start, label: "plain")
                    return
                }
            }
        }
    }

    /// Prints a line unbuffered, so the driving script sees the port at once.
    static func emit(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static func report(bytes: Int, since start: UInt64, label: String) {
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        emit(
            "transfer \(label) \(bytes) bytes \(String(format: "%.3f", seconds)) s \(String(format: "%.0f", Double(bytes) / seconds / 1e6)) MB/s"
        )
    }

    static func send(noise: Bool, port: Int, bytes: Int) async throws {
        let blockSize = Int(WireLimits.maxBlockLength)
        let block = ByteBuffer(repeating: 0x5A, count: blockSize)
        let blocks = (bytes + blockSize - 1) / blockSize
        if noise {
            let configuration = PeerConfiguration(identity: .generate(), swarmKey: benchKey)
            let connection = try await PeerConnection.connect(
                host: "127.0.0.1", port: port, configuration: configuration)
            try await connection.channel.executeThenClose { _, _ in
                for index in 0..<blocks {
                    try await connection.sender.send(
                        .piece(
                            Piece(chunk: UInt32(index / 8), offset: UInt32(index % 8) * UInt32(blockSize), data: block))
                    )
                }
                try await connection.finish()
            }
        } else {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            // The same bounded window as PeerSender (4 MiB in flight), without any protocol or crypto.
            var inFlight: [EventLoopFuture<Void>] = []
            for _ in 0..<blocks {
                let promise = channel.channel.eventLoop.makePromise(of: Void.self)
                channel.channel.writeAndFlush(block, promise: promise)
                inFlight.append(promise.futureResult)
                if inFlight.count > 32 { try await inFlight.removeFirst().get() }
            }
            for future in inFlight { try await future.get() }
            try await channel.channel.close()
        }
    }
}
