import Foundation
import Hummingbird
import NIOCore
import SignalingProtocol

/// `GET /v1/observed`: tells a client the address and port its request's connection came from (docs/nat.md, "The
/// listening port's mapping"). A client asks it from its peer listening port, so the answer is the NAT's mapping of
/// that port, which it announces as its reflexive candidate. Nothing is stored; each address may ask twice a
/// second on average (a burst of 20), more is answered 429. Behind a trusted proxy the address comes from `X-Forwarded-For` and
/// has no port (the proxy does not forward it).
struct ObservedRoute: Sendable {
    let rateLimit: AddressRateLimit
    let trustedProxies: Set<String>

    func add(to router: Router<SignalRequestContext>) {
        router.get(RouterPath(Signaling.observedPath)) { request, context -> Response in
            self.answer(request, context)
        }
    }

    func answer(_ request: Request, _ context: SignalRequestContext) -> Response {
        let peer = context.remoteAddress
        var observed = ClientAddress.observed(peer, port: true)
        if let ip = peer?.ipAddress, trustedProxies.contains(ip) {
            let forwarded = request.headers[values: .init("X-Forwarded-For")!]
            observed = ConnectionGuardHandler.forwardedAddress(forwarded, trusted: trustedProxies)
        }
        guard rateLimit.allow(ClientAddress.key(text: observed?.address ?? "") ?? ClientAddress.key(of: peer)) else {
            return Response(status: .tooManyRequests)
        }
        guard let observed,
            let body = try? JSONEncoder().encode(ObservedReply(observed))
        else { return Response(status: .notFound) }
        return Response(
            status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
