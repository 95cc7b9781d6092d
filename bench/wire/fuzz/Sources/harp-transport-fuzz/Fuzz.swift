// libFuzzer entry point of harp-transport-fuzz: each input is a plaintext stream with a cipher and frame sizes
// (format: `TransportReaderDifferential.Input.init(fuzzInput:)`), cut into frames, sealed, read by TransportReader and
// checked against MessageParser over the whole stream, and, when the input says so, read again with one frame forged.
// The check is the seeded test's (Tests/SwarmKitTests/TransportReaderFuzzTests.swift, compiled here through a
// symlink). A crash, trap or mismatch is a finding: add the input to that test's `fixedInputs`.
import Glibc
import NIOCore

@testable import SwarmKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = TransportReaderDifferential.Input(fuzzInput: Array(UnsafeBufferPointer(start: data, count: size)))
    do {
        _ = try TransportReaderDifferential.check(input)
    } catch {
        fatalError("TransportReader differs from MessageParser: \(error)")
    }
    return 0
}

/// With `HARP_FUZZ_SEED_DIR` set (run.sh sets it to the corpus), first writes seed inputs there: the sample messages
/// (`WireSamples`, compiled here through a symlink), all in one stream and each alone, with both ciphers, cut into
/// frames of a few sizes, some with a forged frame. From nothing, the fuzzer takes long to build a whole valid message.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>
) -> CInt {
    guard let directory = getenv("HARP_FUZZ_SEED_DIR").map({ String(cString: $0) }) else { return 0 }
    typealias Input = TransportReaderDifferential.Input
    typealias Forgery = TransportReaderDifferential.Forgery
    let stream = Array(WireSamples.stream.readableBytesView)
    var seeds = [
        Input(cipher: .aesGCM, frameSizes: [], forgery: nil, plaintext: stream),
        Input(cipher: .chaChaPoly, frameSizes: [], forgery: nil, plaintext: stream),
        Input(cipher: .aesGCM, frameSizes: [7], forgery: nil, plaintext: stream),
        Input(cipher: .chaChaPoly, frameSizes: [1, 64], forgery: nil, plaintext: stream),
        Input(
            cipher: .aesGCM, frameSizes: [300], forgery: Forgery(frame: 1, position: 5, mask: 0x80), plaintext: stream),
        Input(
            cipher: .chaChaPoly, frameSizes: [0, 13], forgery: Forgery(frame: 2, position: 20, mask: 1),
            plaintext: stream),
    ]
    for message in WireSamples.all {
        seeds.append(
            Input(cipher: .aesGCM, frameSizes: [5], forgery: nil, plaintext: Array(message.encoded().readableBytesView))
        )
    }
    for (index, seed) in seeds.enumerated() {
        guard let file = fopen("\(directory)/seed-\(index)", "wb") else { continue }
        seed.fuzzInput.withUnsafeBytes { _ = fwrite($0.baseAddress, 1, $0.count, file) }
        fclose(file)
    }
    return 0
}
