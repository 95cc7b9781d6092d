public import Crypto
import Foundation

/// The signature type byte of a C2SP signed-note key (c2sp.org/signed-note, "Signature types").
public enum NoteSignatureType: UInt8, Sendable, Hashable {
    /// `0x01`: an Ed25519 signature over the note text (a log's checkpoint signature).
    case ed25519 = 0x01
    /// `0x04`: a timestamped Ed25519 witness cosignature (c2sp.org/tlog-cosignature, `cosignature/v1`).
    case cosignatureV1 = 0x04
}

/// Why a note, a key or a witness request was refused.
public enum NoteError: Error, Equatable, Sendable {
    /// The text is not of the form the spec requires; `reason` says which rule.
    case malformed(String)
    /// Over the size limit, checked before parsing.
    case tooLarge(size: Int, limit: Int)
    /// More signature lines (or proof lines) than the limit.
    case tooManyLines(count: Int, limit: Int)
    /// A key string is not of the documented form.
    case badKey(String)
}

/// A signed-note verifier key: a name, a signature type and a 32-byte Ed25519 public key.
///
/// Text form (c2sp.org/signed-note, "Verifier keys"): `name+hhhhhhhh+base64(type || public key)`, where `hhhhhhhh` is
/// the key ID in lowercase hex: the first four bytes of SHA-256(name || 0x0A || type || public key), big-endian.
public struct NoteVerifierKey: Hashable, Sendable, CustomStringConvertible {
    /// The key name: non-empty, no Unicode space, no `+`.
    public let name: String
    /// Ed25519 note signature or cosignature/v1.
    public let type: NoteSignatureType
    /// The 32-byte Ed25519 public key.
    public let publicKey: [UInt8]
    /// The key ID carried at the front of every signature by this key.
    public let keyID: UInt32

    /// A key from its parts; refuses a bad name or a public key that is not 32 bytes.
    public init(name: String, type: NoteSignatureType, publicKey: [UInt8]) throws(NoteError) {
        guard Self.isValidName(name) else { throw .badKey("key name must be non-empty, without spaces or '+'") }
        guard publicKey.count == 32 else { throw .badKey("an Ed25519 public key has 32 bytes") }
        self.name = name
        self.type = type
        self.publicKey = publicKey
        self.keyID = Self.keyID(name: name, type: type, publicKey: publicKey)
    }

    /// Parses `name+hhhhhhhh+base64(type || key)`; the key ID must match the one computed from the parts.
    public init(vkey: String) throws(NoteError) {
        guard vkey.utf8.count <= 1024 else { throw .badKey("verifier key over 1024 bytes") }
        let parts = vkey.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .badKey("a verifier key is name+keyid+base64") }
        guard let hash = Self.parseKeyID(parts[1]) else { throw .badKey("the key ID is 8 lowercase hex digits") }
        guard let raw = Base64.decode(String(parts[2])), raw.count == 33 else {
            throw .badKey("the key material is base64 of a type byte and 32 bytes")
        }
        guard let type = NoteSignatureType(rawValue: raw[0]) else {
            throw .badKey("unsupported signature type \(raw[0])")
        }
        try self.init(name: String(parts[0]), type: type, publicKey: Array(raw[1...]))
        guard keyID == hash else { throw .badKey("the key ID does not match the key") }
    }

    /// The text form, `name+hhhhhhhh+base64(type || key)`.
    public var vkey: String {
        "\(name)+\(Self.hex8(keyID))+\(Base64.encode([type.rawValue] + publicKey))"
    }

    public var description: String { vkey }

    /// SHA-256(name || 0x0A || type || public key)[:4] as a big-endian integer.
    public static func keyID(name: String, type: NoteSignatureType, publicKey: [UInt8]) -> UInt32 {
        var hasher = SHA256()
        hasher.update(data: Array(name.utf8) + [0x0a, type.rawValue] + publicKey)
        return Array(hasher.finalize()).prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// True when `signature` is this key's Ed25519 signature of `message`.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        guard signature.count == 64, let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else {
            return false
        }
        return key.isValidSignature(signature, for: message)
    }

    /// Key names are non-empty and hold no Unicode space and no `+` (c2sp.org/signed-note, "Format").
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 256 && Text.isPrintable(name)
            && !name.unicodeScalars.contains { $0 == "+" || $0.properties.isWhitespace }
    }

    static func hex8(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    private static func parseKeyID(_ text: Substring) -> UInt32? {
        guard text.utf8.count == 8, text.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        else { return nil }
        return UInt32(text, radix: 16)
    }
}

/// A signed-note signing key: the private half of a `NoteVerifierKey`.
///
/// Text form (as golang.org/x/mod/sumdb/note writes it, with the type byte of the key):
/// `PRIVATE+KEY+name+hhhhhhhh+base64(type || 32-byte Ed25519 seed)`. Keep it in a 0600 file.
public struct NoteSigningKey: Sendable {
    /// The public half.
    public let verifierKey: NoteVerifierKey
    private let privateKey: Curve25519.Signing.PrivateKey

    /// A new random key.
    public static func generate(name: String, type: NoteSignatureType) throws(NoteError) -> NoteSigningKey {
        try NoteSigningKey(name: name, type: type, privateKey: Curve25519.Signing.PrivateKey())
    }

    /// A key from its parts.
    public init(name: String, type: NoteSignatureType, privateKey: Curve25519.Signing.PrivateKey) throws(NoteError) {
        self.privateKey = privateKey
        self.verifierKey = try NoteVerifierKey(
            name: name, type: type, publicKey: Array(privateKey.publicKey.rawRepresentation))
    }

    /// Parses `PRIVATE+KEY+name+hhhhhhhh+base64(type || seed)`.
    public init(skey: String) throws(NoteError) {
        guard skey.hasPrefix("PRIVATE+KEY+"), skey.utf8.count <= 1024 else { throw .badKey("not a private key") }
        let parts = skey.dropFirst("PRIVATE+KEY+".count).split(
            separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let raw = Base64.decode(String(parts[2])), raw.count == 33,
            let type = NoteSignatureType(rawValue: raw[0]),
            let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw[1...])
        else { throw .badKey("a private key is PRIVATE+KEY+name+keyid+base64(type || seed)") }
        try self.init(name: String(parts[0]), type: type, privateKey: key)
        guard NoteVerifierKey.hex8(verifierKey.keyID) == parts[1] else { throw .badKey("the key ID does not match") }
    }

    /// The text form of the private key.
    public var skey: String {
        let material = [verifierKey.type.rawValue] + Array(privateKey.rawRepresentation)
        return "PRIVATE+KEY+\(verifierKey.name)+\(NoteVerifierKey.hex8(verifierKey.keyID))+\(Base64.encode(material))"
    }

    /// An Ed25519 signature (64 bytes) of `message`.
    public func sign(_ message: [UInt8]) -> [UInt8] {
        do {
            return Array(try privateKey.signature(for: message))
        } catch {
            preconditionFailure("Ed25519 signing failed: \(error)")
        }
    }
}

/// Standard base64 (RFC 4648 §4) with padding; decoding accepts only the canonical encoding.
enum Base64 {
    static func encode(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    static func decode(_ text: String) -> [UInt8]? {
        guard let data = Data(base64Encoded: text) else { return nil }
        let bytes = [UInt8](data)
        return encode(bytes) == text ? bytes : nil
    }
}
