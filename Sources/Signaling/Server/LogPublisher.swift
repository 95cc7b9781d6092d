import ChunkStore
import Foundation
import HarpHTTP
import Logging
import Synchronization
import VersionLog

/// Publishes the log's checkpoints: after appends, signs a checkpoint of the whole log, sends it with a consistency
/// proof to every witness of the federation (`POST URL/add-checkpoint`), collects their cosignatures and publishes
/// the checkpoint only once `quorum` distinct witnesses cosigned it. A witness that is down or refuses delays
/// publication; it never makes the log publish without its quorum.
///
/// Per witness it remembers the size that witness last cosigned (learnt from a 409 answer after a restart, since a
/// witness's state outlives this process); a 409 is retried once with the size it names.
final class LogPublisher: Sendable {
    let log: LogStore
    let witnesses: [Federation.Server]
    let quorum: Int
    let interval: Duration
    let metrics: ServerMetrics
    let logger: Logger
    /// The size each witness last cosigned, by its witness vkey (a guess until it answers).
    private let cosignedSizes = Mutex<[String: Int]>([:])
    /// Witness answers are hostile input: at most `maximumAnswer` bytes and 10 s, the connection closed past either.
    private let http = BoundedHTTPClient(limits: .init(maximumBody: LogPublisher.maximumAnswer, deadline: .seconds(10)))
    /// The size of the newest published checkpoint, once read from the database: an idle round costs no I/O.
    private let publishedSize = Mutex<Int?>(nil)

    /// The largest witness answer read (a few cosignature lines, or a size).
    static let maximumAnswer = 16 * 1024

    init(
        log: LogStore, witnesses: [Federation.Server], quorum: Int, interval: Duration, metrics: ServerMetrics,
        logger: Logger
    ) {
        self.log = log
        self.witnesses = witnesses
        self.quorum = quorum
        self.interval = interval
        self.metrics = metrics
        self.logger = logger
    }

    /// Publishes whenever the log grew, every `interval`, until cancelled.
    func run() async {
        while !Task.isCancelled {
            do {
                try await publishOnce()
            } catch is CancellationError {
                return
            } catch {
                logger.warning("checkpoint publication failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// One round: nothing if the newest published checkpoint covers the log, else collect cosignatures for the
    /// current size and publish on quorum. Returns the size published, if any.
    @discardableResult
    func publishOnce() async throws -> Int? {
        let known: Int
        if let cached = publishedSize.withLock({ $0 }) {
            known = cached
        } else {
            known = try await log.latestPublished()?.size ?? 0
            publishedSize.withLock { $0 = known }
        }
        guard log.size > known else { return nil }
        let (checkpoint, note) = log.signedCheckpoint()
        let size = Int(checkpoint.size)
        let cosignatures = await withTaskGroup(of: NoteSignature?.self) { group in
            for witness in witnesses {
                group.addTask { await self.cosignature(from: witness, note: note, size: size) }
            }
            var collected: [NoteSignature] = []
            for await signature in group { if let signature { collected.append(signature) } }
            return collected
        }
        guard cosignatures.count >= quorum else {
            logger.debug(
                "checkpoint not published: quorum not reached",
                metadata: ["log.size": "\(size)", "cosignatures": "\(cosignatures.count)", "quorum": "\(quorum)"])
            return nil
        }
        try await log.publish(
            LogStore.Published(size: size, note: note.adding(cosignatures)), now: Int64(Date().timeIntervalSince1970))
        publishedSize.withLock { $0 = max($0 ?? 0, size) }
        metrics.checkpointsPublished.increment()
        logger.debug(
            "checkpoint published", metadata: ["log.size": "\(size)", "cosignatures": "\(cosignatures.count)"])
        return size
    }

    /// The witness's verified cosignature of `note`, nil if it is down, refuses, or answers something else.
    private func cosignature(from witness: Federation.Server, note: SignedNote, size: Int) async -> NoteSignature? {
        let name = witness.witnessKey.vkey
        var oldSize = cosignedSizes.withLock { $0[name] ?? 0 }
        for _ in 0..<2 {
            guard oldSize <= size, let proof = log.consistencyProof(oldSize: oldSize, newSize: size) else { return nil }
            let body = AddCheckpointRequest(oldSize: UInt64(oldSize), consistencyProof: proof, checkpoint: note).body
            guard let answer = await post(witness.url + "/add-checkpoint", body: body) else { return nil }
            switch answer {
            case .cosigned(let lines):
                let valid = lines.first { line in
                    line.names(witness.witnessKey)
                        && Cosignature.verify(line, checkpointText: note.text, key: witness.witnessKey) != nil
                }
                guard let valid else {
                    logger.warning("a witness answered without a valid cosignature", metadata: ["witness": "\(name)"])
                    return nil
                }
                cosignedSizes.withLock { $0[name] = size }
                return valid
            case .conflict(let latest):
                guard let latest = Int(exactly: latest), latest != oldSize else { return nil }
                oldSize = latest
                cosignedSizes.withLock { $0[name] = latest }
            default:
                logger.warning(
                    "a witness refused this log's checkpoint",
                    metadata: ["witness": "\(name)", "status": "\(answer.statusCode)"])
                return nil
            }
        }
        return nil
    }

    private func post(_ url: String, body: String) async -> AddCheckpointResponse? {
        do {
            let answer = try await http.send(
                "POST", url, headers: [("Content-Type", "text/plain")], body: Array(body.utf8))
            return AddCheckpointResponse(statusCode: answer.status, body: String(decoding: answer.body, as: UTF8.self))
        } catch BoundedHTTPError.bodyTooLarge(let limit), BoundedHTTPError.headTooLarge(let limit) {
            logger.warning(
                "a witness answered over the bound; its connection was closed",
                metadata: ["url": "\(url)", "limit": "\(limit)"])
            return nil
        } catch {
            logger.debug("a witness could not be reached", metadata: ["url": "\(url)", "error": "\(error)"])
            return nil
        }
    }
}
