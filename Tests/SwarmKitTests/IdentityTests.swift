import Foundation
import Testing

@testable import SwarmKit

@Suite struct IdentityTests {
    static let salt: [UInt8] = Array(32..<64)

    /// R = 00 01 02 ... 1f, σ = 20 21 ... 3f. The expected values were computed once, by an independent script
    /// (Python's hmac/hashlib and the `cryptography` package), from the derivations in docs/protocol.md §2.
    @Test func swarmKeysRegressionVector() {
        let keys = SwarmKeys(contentRoot: Array(0..<32), salt: Self.salt)
        #expect(Hex.encode(keys.swarmKey.bytes) == "85c72d16bcf28822e8ec2158be3577ac4d798663eecf2bdb2b4c56582b9975c1")
        #expect(Hex.encode(keys.swarmID) == "29accfdaf17319625cb989e8a09386e1f2f903be573762385891891fc1120d75")
    }

    /// The salt is what keeps S from being a function of the content: the same R with another σ gives another K and S.
    @Test func theSaltChangesKAndS() {
        let root: [UInt8] = Array(0..<32)
        let a = SwarmKeys(contentRoot: root, salt: Self.salt)
        var otherSalt = Self.salt
        otherSalt[31] ^= 1
        let b = SwarmKeys(contentRoot: root, salt: otherSalt)
        #expect(a.swarmKey.bytes != b.swarmKey.bytes)
        #expect(a.swarmID != b.swarmID)
    }

    @Test func differentRootsGiveDifferentKeys() {
        var seenK = Set<[UInt8]>()
        var seenS = Set<[UInt8]>()
        for index in 0..<32 {
            var root = [UInt8](repeating: 0, count: 32)
            root[index] = 1
            let keys = SwarmKeys(contentRoot: root, salt: Self.salt)
            seenK.insert(keys.swarmKey.bytes)
            seenS.insert(keys.swarmID)
            #expect(keys.swarmKey.bytes != keys.swarmID)
        }
        #expect(seenK.count == 32 && seenS.count == 32)
    }

    @Test func swarmSignatureVerifiesWithSwarmID() {
        let keys = SwarmKeys(contentRoot: Array(repeating: 9, count: 32), salt: Self.salt)
        let challenge = Array("join challenge".utf8)
        let signature = keys.sign(challenge)
        #expect(DeviceIdentity.verify(signature: signature, message: challenge, publicKey: keys.swarmID))
        #expect(!DeviceIdentity.verify(signature: signature, message: challenge + [0], publicKey: keys.swarmID))
    }

    @Test func deviceFingerprintFormat() {
        let identity = DeviceIdentity(seed: SecureBytes(copying: Array(0..<32)))
        #expect(Hex.encode(identity.publicKey) == "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8")
        #expect(identity.fingerprint == "zw6l-smzt-5stj-vn5e")
    }

    @Test func keyFileIsCreatedOnceWithMode0600() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("harp-id-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("sub/device.key").path
        let first = try DeviceIdentity.loadOrCreate(at: path)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect((attributes[.size] as? Int) == 40)
        let again = try DeviceIdentity.loadOrCreate(at: path)
        #expect(again.publicKey == first.publicKey)
        let contents = try FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("sub").path)
        #expect(contents == ["device.key"])  // no temporary file left behind
    }

    @Test func keyFileReadableByOthersIsRefused() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("harp-id-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("device.key").path
        _ = try DeviceIdentity.loadOrCreate(at: path)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        #expect(throws: DeviceIdentityError.self) { try DeviceIdentity.loadOrCreate(at: path) }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        #expect(throws: DeviceIdentityError.self) { try DeviceIdentity.loadOrCreate(at: path) }
    }

    @Test func noiseStaticKeyIsTheConvertedDeviceKey() {
        let identity = DeviceIdentity.generate()
        #expect(
            DeviceIdentity.noiseStaticPublicKey(forDeviceKey: identity.publicKey) == identity.noiseStaticKey.publicKey)
    }
}
