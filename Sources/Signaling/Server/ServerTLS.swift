import Crypto
import Foundation
import NIOSSL
import SignalingProtocol
import X509

/// The server's TLS material: loaded from PEM files, or a self-signed certificate made on first start and kept in
/// the data directory (`tls-cert.pem`, `tls-key.pem`, the key file 0600).
struct ServerTLS {
    let configuration: TLSConfiguration
    /// SHA-256 of the leaf certificate's DER bytes, in lowercase hex: the value clients pin.
    let fingerprint: String

    static func load(_ mode: TLSMode, dataDirectory: String) throws -> ServerTLS? {
        switch mode {
        case .none:
            return nil
        case .files(let certificatePath, let keyPath):
            return try make(certificatePEM: read(certificatePath), keyPEM: read(keyPath))
        case .selfSigned:
            let certificatePath = dataDirectory + "/tls-cert.pem"
            let keyPath = dataDirectory + "/tls-key.pem"
            if !FileManager.default.fileExists(atPath: certificatePath)
                || !FileManager.default.fileExists(atPath: keyPath)
            {
                let (certificatePEM, keyPEM) = try makeSelfSigned()
                try FileManager.default.createDirectory(
                    atPath: dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                // A half-made pair (a crash between the two writes) is made again; the key file is created new.
                for path in [keyPath, certificatePath] where FileManager.default.fileExists(atPath: path) {
                    try FileManager.default.removeItem(atPath: path)
                }
                try writeNew(keyPEM, to: keyPath, permissions: 0o600)
                try writeNew(certificatePEM, to: certificatePath, permissions: 0o644)
            }
            return try make(certificatePEM: read(certificatePath), keyPEM: read(keyPath))
        }
    }

    private static func make(certificatePEM: [UInt8], keyPEM: [UInt8]) throws -> ServerTLS {
        let chain = try NIOSSLCertificate.fromPEMBytes(certificatePEM)
        guard let leaf = chain.first else { throw SignalServerError.tls("no certificate in the PEM file") }
        let key = try NIOSSLPrivateKey(bytes: keyPEM, format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        // A peer that vanishes without close_notify holds its socket this long at most (NIOSSL's default is 5 s).
        configuration.shutdownTimeout = .seconds(1)
        return ServerTLS(configuration: configuration, fingerprint: try fingerprint(of: leaf))
    }

    static func fingerprint(of certificate: NIOSSLCertificate) throws -> String {
        CertificateFingerprint.of(der: try certificate.toDERBytes())
    }

    /// A P-256 certificate for `localhost`, valid for ten years; clients pin its fingerprint rather than its name.
    static func makeSelfSigned() throws -> (certificate: String, key: String) {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            CommonName("harp signaling server")
            OrganizationName("harp")
        }
        let now = Date()
        var serial = [UInt8](repeating: 0, count: 16)
        var rng = SystemRandomNumberGenerator()
        for index in serial.indices { serial[index] = rng.next() }
        serial[0] &= 0x7f
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(bytes: serial),
            publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(10 * 365 * 24 * 3600),
            issuer: name,
            subject: name,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                SubjectAlternativeNames([.dnsName("localhost")])
            },
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
        return (try certificate.serializeAsPEM().pemString, key.pemRepresentation)
    }

    private static func read(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SignalServerError.tls("cannot read \(path)")
        }
        return Array(data)
    }

    /// Creates `path` with `permissions` from its first byte (`O_CREAT | O_EXCL`: never an existing file, never a
    /// moment with wider permissions), writes `text` and syncs it.
    static func writeNew(_ text: String, to path: String, permissions: mode_t) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, permissions)
        guard descriptor >= 0 else {
            throw SignalServerError.tls("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        // The umask may have narrowed the mode further; never wider, but make it exactly what was asked.
        guard fchmod(descriptor, permissions) == 0 else {
            throw SignalServerError.tls("cannot set the mode of \(path)")
        }
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else {
                throw SignalServerError.tls("cannot write \(path): \(String(cString: strerror(errno)))")
            }
            bytes = bytes.dropFirst(written)
        }
        guard fsync(descriptor) == 0 else { throw SignalServerError.tls("cannot sync \(path)") }
    }
}

/// Why a ``SignalServer`` could not start.
public enum SignalServerError: Error, CustomStringConvertible {
    /// The TLS certificate or key could not be read, made or parsed.
    case tls(String)
    /// The server stopped before it was listening.
    case notListening
    /// The data directory's database could not be created or made private.
    case storage(String)

    public var description: String {
        switch self {
        case .tls(let detail): "TLS: \(detail)"
        case .notListening: "the server stopped before it was listening"
        case .storage(let detail): "data directory: \(detail)"
        }
    }
}
