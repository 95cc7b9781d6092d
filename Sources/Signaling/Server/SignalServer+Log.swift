import ChunkStore
import Foundation
import HarpBasics
import Hummingbird
import Logging
import NIOCore
import VersionLog

/// The version log's HTTP endpoints, beside the WebSocket routes (docs/proofs.md, "HTTP"):
///
/// - `POST /v1/log/append`: body = the expected head's chain hash (32 bytes, zeroes for a new lineage) then the
///   entry's canonical encoding; 200 `{"leafIndex": N}`, 409 `{"head": null | {"version", "chainHash", "leafIndex",
///   "entry"}}` (hex hash, base64 entry), 400 with the reason;
/// - `GET /v1/log/checkpoint`: the newest published checkpoint, a signed note with its cosignatures (404 before the
///   first);
/// - `GET /v1/log/proof?lineage=HEX`: the lineage's `ProofBundle` JSON against that checkpoint;
/// - `POST /add-checkpoint`: this server as a witness of the other logs of its federation (c2sp.org/tlog-witness);
/// - `GET /v1/log/head?lineage=HEX`: the lineage's head (the 409 answer's `head` object), 404 without one;
/// - `POST /v1/log/enroll/challenge`: a nonce and the server's Nextcloud account, for an enrollment through a share;
/// - `POST /v1/log/enroll`: body = the id of the share holding the signed request; 200 `{"leafIndex", "user",
///   "action"}`, 400/403 with the reason, 503 when Nextcloud cannot be asked (docs/proofs.md §3).
///
/// Every body is read up to a bound before it is parsed.
struct LogRoutes: Sendable {
    let log: LogStore
    let witness: WitnessStore
    let enrollment: ShareEnrollment?
    /// Requests to `/v1/log/*` per client address (an enrollment costs `enrollmentCost` requests).
    let rateLimit: AddressRateLimit
    /// Addresses of proxies whose `X-Forwarded-For` names the client (exact IP strings as `SocketAddress` prints them).
    let trustedProxies: Set<String>
    let metrics: ServerMetrics
    let logger: Logger

    /// The largest append body: the expected head and the largest entry.
    static let maximumAppendBody = 32 + LogEntry.maximumEncodedSize

    /// What an enrollment or a challenge costs of an address's request budget: each makes the server ask Nextcloud.
    static let enrollmentCost: Double = 10

    func add(to router: Router<SignalRequestContext>) {
        router.post("/v1/log/append") { request, context in
            try await limited(request, context) { try await append(request) }
        }
        router.get("/v1/log/checkpoint") { request, context in
            try await limited(request, context) { try await checkpoint() }
        }
        router.get("/v1/log/proof") { request, context in
            try await limited(request, context) { try await proof(request) }
        }
        router.get("/v1/log/head") { request, context in
            try await limited(request, context) { try await head(request) }
        }
        router.post("/v1/log/enroll/challenge") { request, context in
            try await limited(request, context, cost: Self.enrollmentCost) { challenge() }
        }
        router.post("/v1/log/enroll") { request, context in
            try await limited(request, context, cost: Self.enrollmentCost) { try await enroll(request) }
        }
        router.post("/add-checkpoint") { request, _ in try await addCheckpoint(request) }
    }

    /// Runs `handler` if the client's address has `cost` requests left in its budget, else answers 429.
    private func limited(
        _ request: Request, _ context: SignalRequestContext, cost: Double = 1,
        _ handler: () async throws -> Response
    ) async throws -> Response {
        guard rateLimit.allow(clientKey(request, context), cost: cost) else {
            metrics.logRateLimited.increment()
            return Response(
                status: .tooManyRequests, headers: [.contentType: "text/plain", .retryAfter: "1"],
                body: .init(byteBuffer: ByteBuffer(string: "too many version-log requests from your address\n")))
        }
        return try await handler()
    }

    /// The client's address key: the last `X-Forwarded-For` entry when the peer is a trusted proxy, else the peer.
    private func clientKey(_ request: Request, _ context: SignalRequestContext) -> String {
        let peer = context.remoteAddress
        if let ip = peer?.ipAddress, trustedProxies.contains(ip),
            let last = request.headers.filter({ $0.name.canonicalName == "x-forwarded-for" }).last?.value
                .split(separator: ",").last,
            let key = ClientAddress.key(text: String(last))
        {
            return key
        }
        return ClientAddress.key(of: peer)
    }

    private static func headObject(_ head: LogStore.Head) -> [String: Any] {
        [
            "version": head.version, "chainHash": head.chainHash.hex, "leafIndex": head.leafIndex,
            "entry": Data(head.entry).base64EncodedString(),
        ]
    }

    private func head(_ request: Request) async throws -> Response {
        guard let hex = request.uri.queryParameters.get("lineage"), hex.utf8.count == 64,
            let lineage = Hash256(hex: hex)
        else { return Self.response(.badRequest, "lineage=HEX (64 hex digits) is required\n") }
        guard let head = try await log.head(of: lineage) else {
            return Self.response(.notFound, "no version of this lineage\n")
        }
        return Self.json(.ok, Self.headObject(head))
    }

    private func challenge() -> Response {
        guard let enrollment else {
            return Self.response(.notFound, "this server has no Nextcloud account: enrollment is by its operator\n")
        }
        guard let challenge = enrollment.challenge(now: Int64(Date().timeIntervalSince1970)) else {
            metrics.enrollmentRefusals.increment()
            return Self.response(.serviceUnavailable, "too many enrollment challenges outstanding; try again later\n")
        }
        return Self.json(
            .ok,
            [
                "nonce": Hex.encode(challenge.nonce), "account": challenge.account, "instance": challenge.instance,
                "origin": challenge.origin, "expires": challenge.expires,
            ])
    }

    /// The largest enroll body: a share id.
    static let maximumEnrollBody = 64

    private func enroll(_ request: Request) async throws -> Response {
        guard let enrollment else {
            return Self.response(.notFound, "this server has no Nextcloud account: enrollment is by its operator\n")
        }
        var request = request
        let body = try await request.collectBody(upTo: Self.maximumEnrollBody)
        let shareID = String(decoding: body.readableBytesView, as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        do {
            let (leaf, enrolled) = try await enrollment.enroll(shareID: shareID) {
                Int64(Date().timeIntervalSince1970)
            }
            metrics.enrollments.increment()
            return Self.json(
                .ok,
                [
                    "leafIndex": leaf, "user": enrolled.user, "device": enrolled.device.description,
                    "action": enrolled.action == .enroll ? "enroll" : "revoke",
                ])
        } catch {
            metrics.enrollmentRefusals.increment()
            logger.info("enrollment refused", metadata: ["reason": "\(error)"])
            switch error {
            case .badRequest(let reason): return Self.response(.badRequest, reason + "\n")
            case .refused(let reason): return Self.response(.forbidden, reason + "\n")
            case .unavailable(let reason): return Self.response(.serviceUnavailable, reason + "\n")
            }
        }
    }

    private static func response(_ status: HTTPResponse.Status, _ body: String, type: String = "text/plain") -> Response
    {
        Response(
            status: status, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    private static func json(_ status: HTTPResponse.Status, _ object: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return response(status, String(decoding: data, as: UTF8.self), type: "application/json")
    }

    private func append(_ request: Request) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: Self.maximumAppendBody)
        let bytes = Array(body.readableBytesView)
        guard bytes.count > 32, let expected = Hash256(bytes: bytes[0..<32]) else {
            metrics.logAppendRefusals.increment()
            return Self.response(.badRequest, "the body is the expected head (32 bytes) then the entry\n")
        }
        do {
            let now = Int64(Date().timeIntervalSince1970)
            switch try await log.append(encoded: Array(bytes[32...]), expectedHead: expected, now: now) {
            case .appended(let index):
                metrics.logAppends.increment()
                return Self.json(.ok, ["leafIndex": index])
            case .conflict(let head):
                metrics.logAppendConflicts.increment()
                guard let head else { return Self.json(.conflict, ["head": NSNull()]) }
                return Self.json(.conflict, ["head": Self.headObject(head)])
            }
        } catch let error as LogStore.AppendError {
            metrics.logAppendRefusals.increment()
            logger.info("version log append refused", metadata: ["reason": "\(error)"])
            // 403 for a device that is not enrolled (the client enrolls, then appends again); 400 otherwise.
            return Self.response(error == .notEnrolled ? .forbidden : .badRequest, "\(error)\n")
        }
    }

    private func checkpoint() async throws -> Response {
        guard let published = try await log.latestPublished() else {
            return Self.response(.notFound, "no checkpoint published yet\n")
        }
        return Self.response(.ok, published.note.formatted, type: "text/plain; charset=utf-8")
    }

    private func proof(_ request: Request) async throws -> Response {
        guard let hex = request.uri.queryParameters.get("lineage"), hex.utf8.count == 64,
            let lineage = Hash256(hex: hex)
        else { return Self.response(.badRequest, "lineage=HEX (64 hex digits) is required\n") }
        guard let bundle = try await log.proofBundle(lineage: lineage) else {
            return Self.response(.notFound, "no version of this lineage is in a published checkpoint\n")
        }
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: bundle.json())))
    }

    private func addCheckpoint(_ request: Request) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: AddCheckpointRequest.maximumBodySize)
        let text = String(decoding: body.readableBytesView, as: UTF8.self)
        let answer = try await witness.addCheckpoint(body: text, now: UInt64(max(0, Date().timeIntervalSince1970)))
        switch answer {
        case .cosigned:
            metrics.witnessCosigned.increment()
        case .conflict, .inconsistent:
            metrics.witnessRefusals.increment()
            logger.warning(
                "witness refused an inconsistent checkpoint",
                metadata: ["status": "\(answer.statusCode)", "answer": "\(answer.body.prefix(80))"])
        case .badRequest, .forbidden, .unknownOrigin:
            logger.info("witness refused a checkpoint", metadata: ["status": "\(answer.statusCode)"])
        }
        return Self.response(
            HTTPResponse.Status(code: answer.statusCode), answer.body, type: answer.contentType)
    }
}
