import NIOCore
import NIOPosix
public import NIOSSL
import SignalingProtocol

/// TLS with a pinned certificate: the client first fetches the server's certificate over a plain NIOSSL
/// connection whose verification callback accepts it only if its SHA-256 fingerprint matches the pin, then
/// connects with a TLS configuration that trusts exactly that certificate as its only root (hostname not
/// checked: the pin is the identity). A server presenting any other certificate fails the second handshake.
public enum CertificatePinning {
    /// A client TLS configuration that trusts only the certificate whose DER SHA-256 is `fingerprint` (hex).
    public static func tlsConfiguration(
        host: String, port: Int, fingerprint: String, timeout: Duration = .seconds(10)
    ) async throws -> TLSConfiguration {
        let certificate = try await fetchCertificate(host: host, port: port, fingerprint: fingerprint, timeout: timeout)
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates([certificate])
        configuration.certificateVerification = .noHostnameVerification
        return configuration
    }

    static func fetchCertificate(
        host: String, port: Int, fingerprint: String, timeout: Duration
    ) async throws
        -> NIOSSLCertificate
    {
        guard let pin = CertificateFingerprint.parse(fingerprint) else { throw SignalClientError.badPin }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .noHostnameVerification
        let context = try NIOSSLContext(configuration: configuration)
        let result = OneShot<NIOSSLCertificate>()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(Int64(max(1, timeout / .seconds(1)))))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = try NIOSSLClientHandler(context: context, serverHostname: nil) { chain, promise in
                        guard let leaf = chain.first, let der = try? leaf.toDERBytes(),
                            CertificateFingerprint.matches(der: der, pin: pin)
                        else {
                            result.fail(SignalClientError.pinMismatch)
                            promise.succeed(.failed)
                            return
                        }
                        result.fulfil(leaf)
                        promise.succeed(.certificateVerified)
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: host, port: port).get()
        channel.closeFuture.whenComplete { _ in result.fail(SignalClientError.pinMismatch) }
        defer { channel.close(promise: nil) }
        guard let certificate = try await result.value(timeout: timeout) else { throw SignalClientError.timeout }
        return certificate
    }
}
