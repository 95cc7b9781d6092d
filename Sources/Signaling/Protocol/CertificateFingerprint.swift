import Crypto
import HarpBasics

/// The value a client pins for a self-signed server: SHA-256 of the leaf certificate's DER bytes, as 64 lowercase
/// hex digits (docs/signaling.md, "TLS pinning"). The server prints it; the client checks the certificate it is
/// shown against it. Both compute it here, with no TLS library, so that the client need not link the server.
package enum CertificateFingerprint {
    /// The fingerprint of a certificate given as DER bytes.
    package static func of(der: [UInt8]) -> String {
        Hex.encode(SHA256.hash(data: der))
    }

    /// The 32 bytes of a pinned fingerprint (either case); `nil` for anything but 64 hex digits.
    package static func parse(_ text: String) -> [UInt8]? {
        Hex.decode(text, count: 32)
    }

    /// Whether the certificate with DER bytes `der` is the one pinned by `pin` (the parsed fingerprint).
    package static func matches(der: [UInt8], pin: [UInt8]) -> Bool {
        Array(SHA256.hash(data: der)) == pin
    }
}
