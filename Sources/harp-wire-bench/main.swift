// harp-wire-bench: figures for docs/benchmarks.md ("Wire") (driven by bench/wire/run.sh).
//
//   harp-wire-bench aead [seconds]                  seal+open of 64 KiB frames, ChaChaPoly and AESGCM
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

    static func aead(seconds: Double) throws {
        let frame = [UInt8](repeating: 0xA5, count: NoiseTransport.maxPlaintextLength)
        for cipher in NoiseCipher.allCases where cipher.isAvailable {
            var (sender, receiver) = try NoiseTransport.makeInMemoryPair(cipher: cipher)
            var sealed = [UInt8](repeating: 0, count: frame.count + 16)
            var opened = [UInt8](repeating: 0, count: frame.count)
            var frames = 0
            let start = DispatchTime.now().uptimeNanoseconds
            var elapsed: UInt64 = 0
            while elapsed < UInt64(seconds * 1e9) {
                for _ in 0..<64 {
                    try frame.withUnsafeBytes { p in try sealed.withUnsafeMutableBytes { try sender.seal(p, into: $0) }
                    }
                    try sealed.withUnsafeBytes { c in
                        try opened.withUnsafeMutableBytes { try receiver.open(c, into: $0) }
                    }
                }
                frames += 64
                elapsed = DispatchTime.now().uptimeNanoseconds - start
            }
            let mbps = Double(frames * frame.count) / Double(elapsed) * 1e3
            emit(
                "aead \(cipher.rawValue) seal+open \(String(format: "%.0f", mbps)) MB/s (frames of \(frame.count) bytes)"
            )
            var sealOnly = 0
            let sealStart = DispatchTime.now().uptimeNanoseconds
            var sealElapsed: UInt64 = 0
            while sealElapsed < UInt64(seconds * 1e9) {
                for _ in 0..<64 {
                    try frame.withUnsafeBytes { p in try sealed.withUnsafeMutableBytes { try sender.seal(p, into: $0) }
                    }
                }
                sealOnly += 64
                sealElapsed = DispatchTime.now().uptimeNanoseconds - sealStart
            }
            let sealMBps = Double(sealOnly * frame.count) / Double(sealElapsed) * 1e3
            emit("aead \(cipher.rawValue) seal \(String(format: "%.0f", sealMBps)) MB/s")
        }
        // For comparison only: swift-crypto's (BoringSSL) AEADs on the same frames, seal only.
        let key = SymmetricKey(size: .bits256)
        let data = Data(frame)
        for (name, sealOnce) in [
            ("swift-crypto-ChaChaPoly", { _ = try ChaChaPoly.seal(data, using: key) }),
            ("swift-crypto-AESGCM", { _ = try AES.GCM.seal(data, using: key) }),
        ] as [(String, () throws -> Void)] {
            var count = 0
            let start = DispatchTime.now().uptimeNanoseconds
            var elapsed: UInt64 = 0
            while elapsed < UInt64(seconds * 1e9) {
                for _ in 0..<64 { try sealOnce() }
                count += 64
                elapsed = DispatchTime.now().uptimeNanoseconds - start
            }
            emit(
                "aead \(name) seal \(String(format: "%.0f", Double(count * frame.count) / Double(elapsed) * 1e3)) MB/s")
        }
        emit("aead preferred \(NoiseCipher.preferred.rawValue)")
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
