import ChunkStore
import Crypto
import Foundation
import Testing

@testable import SwarmKit

@Suite("Sidecar")
struct SidecarTests {
    let key = Curve25519.Signing.PrivateKey()
    let root = Hash256.sha256(Array("content".utf8))

    let salt = Sidecar.randomSalt()

    func make(fileid: String? = "98", etag: String? = "abc", pending: Bool = false) throws -> Sidecar {
        try Sidecar(
            fileid: fileid, etag: etag, name: "clip1.mp4", size: 1_048_576, mtime: 1_700_000_000,
            chunking: .default, root: root, salt: salt, pending: pending,
            writerKey: Array(key.publicKey.rawRepresentation),
            sign: { Array(try key.signature(for: Data($0))) })
    }

    @Test func roundTripsAndVerifies() throws {
        let sidecar = try make()
        let parsed = try Sidecar(json: sidecar.encoded())
        #expect(parsed == sidecar)
        #expect(parsed.fileName == "98.harp")
        #expect(parsed.writerKey == Array(key.publicKey.rawRepresentation))
        #expect(try make(fileid: nil, etag: nil, pending: true).fileName == "pending-clip1.mp4.harp")
    }

    @Test func anyChangedFieldBreaksTheSignature() throws {
        let sidecar = try make()
        var variants: [Sidecar] = []
        var v = sidecar
        v.etag = "other"
        variants.append(v)
        v = sidecar
        v.root = Hash256.sha256([1])
        variants.append(v)
        v = sidecar
        v.size += 1
        variants.append(v)
        v = sidecar
        v.salt = Data(Sidecar.randomSalt()).base64EncodedString()
        variants.append(v)
        v = sidecar
        v.writer = Data(Curve25519.Signing.PrivateKey().publicKey.rawRepresentation).base64EncodedString()
        variants.append(v)
        for variant in variants {
            #expect(throws: SidecarError.badSignature) { _ = try Sidecar(json: variant.encoded()) }
        }
        #expect(throws: SidecarError.self) { _ = try Sidecar(json: Array("{}".utf8)) }
        var shortSalt = sidecar
        shortSalt.salt = Data(repeating: 7, count: 16).base64EncodedString()
        #expect(throws: SidecarError.malformed("the swarm salt is not 32 bytes")) {
            _ = try Sidecar(json: shortSalt.encoded())
        }
        #expect(throws: SidecarError.self) { _ = try Sidecar(json: [UInt8](repeating: 0x20, count: 20_000)) }
    }

    /// The keys come from R and σ: two sidecars for the same bytes with different salts name different swarms, and a
    /// sidecar's keys are the ones its readers derive.
    @Test func swarmKeysUseTheSalt() throws {
        let sidecar = try make()
        #expect(sidecar.saltBytes == salt)
        #expect(sidecar.swarmKeys.swarmID == SwarmKeys(contentRoot: root.bytes, salt: salt).swarmID)
        let other = try Sidecar(
            fileid: "98", etag: "abc", name: "clip1.mp4", size: 1_048_576, mtime: 1_700_000_000, chunking: .default,
            root: root, salt: Sidecar.randomSalt(), pending: false,
            writerKey: Array(key.publicKey.rawRepresentation), sign: { Array(try key.signature(for: Data($0))) })
        #expect(other.swarmKeys.swarmID != sidecar.swarmKeys.swarmID)
    }

    /// A sidecar of the previous format (no σ) is recognised as outdated, not used: its swarm key would be a function
    /// of the content alone.
    @Test func anOutdatedSidecarIsRecognisedAndRefused() throws {
        var object = try JSONSerialization.jsonObject(with: Data(try make().encoded())) as! [String: Any]
        object["format"] = "harp-sidecar/1"
        object["salt"] = nil
        let json = Array(try JSONSerialization.data(withJSONObject: object))
        #expect(throws: SidecarError.outdated("harp-sidecar/1")) { _ = try Sidecar(json: json) }
    }

    @Test func validityAgainstTheServersView() throws {
        let sidecar = try make()
        let same = RemoteVersion(fileid: "98", etag: "abc", size: 1_048_576, mtime: 1_700_000_000)
        #expect(sidecar.validity(for: same) == .valid)
        var locked = same
        locked.etag = "after-lock"
        #expect(sidecar.validity(for: locked) == .needsSpotCheck)
        var rewritten = locked
        rewritten.mtime += 1
        #expect(sidecar.validity(for: rewritten) == .stale)
        var resized = same
        resized.size -= 1
        #expect(sidecar.validity(for: resized) == .stale)
        var otherFile = same
        otherFile.fileid = "99"
        #expect(sidecar.validity(for: otherFile) == .stale)
        #expect(try make(pending: true).validity(for: same) == .stale)
    }
}
