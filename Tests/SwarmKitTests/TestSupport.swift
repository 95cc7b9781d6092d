import Foundation

@testable import SwarmKit

/// Hex helpers and the Noise vectors copied from ../shared/vectors/noise.json (see Vectors/README.md).
enum Hex {
    static func decode(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        func nibble(_ c: UInt8) -> UInt8 {
            switch c {
            case 48...57: return c - 48
            case 97...102: return c - 87
            case 65...70: return c - 55
            default: fatalError("not hex")  // test data only
            }
        }
        while let high = iterator.next(), let low = iterator.next() {
            bytes.append(nibble(high) << 4 | nibble(low))
        }
        return bytes
    }

    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}

struct NoiseVectorFile: Decodable {
    struct Message: Decodable {
        let payload: String
        let ciphertext: String
    }

    struct Vector: Decodable {
        let protocol_name: String
        let init_prologue: String
        let init_static: String
        let init_ephemeral: String
        let resp_prologue: String
        let resp_static: String
        let resp_ephemeral: String
        let init_psks: [String]?
        let resp_psks: [String]?
        let handshake_hash: String?
        let messages: [Message]
    }

    let vectors: [Vector]

    static func load() throws -> NoiseVectorFile {
        guard let url = Bundle.module.url(forResource: "noise", withExtension: "json", subdirectory: "Vectors") else {
            throw CocoaError(.fileNoSuchFile)
        }
        return try JSONDecoder().decode(NoiseVectorFile.self, from: Data(contentsOf: url))
    }
}

extension SecureBytes {
    var bytes: [UInt8] { withUnsafeBytes { Array($0) } }
}

/// What ``waitFor(_:until:_:)`` throws when its deadline passes.
struct TimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out waiting for \(what)" }
}

/// The one polling loop of these tests: checks `condition` every 10 ms until it holds, and throws ``TimedOut``
/// naming `what` when `deadline` passes first (a deadline on a wait for an event, not a sleep for a peer).
func waitFor(
    _ what: String, until deadline: ContinuousClock.Instant, _ condition: () async throws -> Bool
) async throws {
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw TimedOut(what: what) }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// ``waitFor(_:until:_:)`` with a deadline `seconds` from now.
func waitFor(_ what: String, seconds: Int = 15, _ condition: () async throws -> Bool) async throws {
    try await waitFor(what, until: .now + .seconds(seconds), condition)
}
