public import ChunkStore
internal import Foundation
internal import HarpBasics
public import Logging
public import NextcloudClient
public import SwarmKit
internal import Synchronization
internal import VersionLog

/// Appends this device's versions to the signaling server's version log (docs/proofs.md): `put` records what it
/// uploaded (`create`, then `modify`), `get` and `seed` record an `observed` version when the server's etag is not the
/// lineage's head (a version written by the web interface, a desktop client or WebDAV directly).
///
/// It never fails a transfer: every problem (no log, a log that is down or refuses, a file that changed meanwhile)
/// comes back as a `Result` with the reason, for the command to warn about. The first append of a device that is not
/// enrolled enrolls it through Nextcloud (`DeviceEnrollment`) and tries again; a lost compare-and-swap race takes the
/// new head from the 409 answer and signs again on top of it.
public struct VersionRecorder: Sendable {
    /// What recording one version did.
    public enum Result: Sendable, Equatable {
        /// Appended as `version` at `leafIndex`.
        case appended(version: UInt64, leafIndex: Int)
        /// The log's head already is this version (same etag).
        case known(version: UInt64)
        /// Nothing to record (no signaling server, no content root, the file changed since).
        case skipped(String)
        /// The log could not be reached or refused: the reason, for a warning.
        case failed(String)

        /// The warning to show, if any.
        public var warning: String? {
            if case .failed(let reason) = self { return reason }
            return nil
        }

        /// A short word for `--json` output: appended, known, skipped, failed.
        public var name: String {
            switch self {
            case .appended: "appended"
            case .known: "known"
            case .skipped: "skipped"
            case .failed: "failed"
            }
        }

        /// The fields of a `--json` line.
        public var json: [String: Any] {
            var object: [String: Any] = ["result": name]
            switch self {
            case .appended(let version, let leaf):
                object["version"] = version
                object["leafIndex"] = leaf
            case .known(let version): object["version"] = version
            case .skipped(let reason): object["reason"] = reason
            case .failed(let reason): object["warning"] = reason
            }
            return object
        }
    }

    let http: LogHTTP?
    let client: NextcloudClient
    let identity: DeviceIdentity
    let logger: Logger
    /// Appends tried again after a lost race before giving up.
    var maximumRetries = 8
    /// One enrollment for all of this recorder's appends, however many run at once.
    let enrollmentGate = EnrollmentGate()

    /// A recorder for the log of `signalURL` (nil or unusable: every call answers `skipped`).
    public init(signalURL: String?, client: NextcloudClient, identity: DeviceIdentity, logger: Logger) {
        self.http = signalURL.flatMap { LogHTTP(signalURL: $0) }
        self.client = client
        self.identity = identity
        self.logger = logger
    }

    /// The instance as lineages name it: the server URL without a trailing slash (as `harp-cli proof` does).
    static func instance(_ server: URL) -> String {
        var text = server.absoluteString
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }

    /// Records the version `put` just uploaded to `remotePath` (content root `root`, `size` bytes).
    public func recordUpload(remotePath: String, root: Hash256, size: Int64) async -> Result {
        await record(remotePath: remotePath, root: root, size: size, etag: nil, observed: false)
    }

    /// Appends the version a PUT just made, with the fileid and etag its answer gave (nothing asked of Nextcloud);
    /// without them, as `recordUpload(remotePath:root:size:)`.
    public func recordUpload(
        remotePath: String, fileID: Int64?, etag: String?, root: Hash256, size: Int64
    ) async
        -> Result
    {
        await record(remotePath: remotePath, fileID: fileID, root: root, size: size, etag: etag, observed: false)
    }

    /// Records the version `get` or `seed` met at `remotePath` (`etag` when the fetch began), if the log does not know
    /// it. With `fileID` and `etag` (the listing the fetch began with, whose bytes it verified), nothing is asked of
    /// Nextcloud; without them, a PROPFIND finds them.
    public func recordObserved(
        remotePath: String, fileID: Int64? = nil, root: Hash256?, size: Int64, etag: String?
    ) async -> Result {
        guard let root else { return .skipped("no content root") }
        return await record(remotePath: remotePath, fileID: fileID, root: root, size: size, etag: etag, observed: true)
    }

    private func record(
        remotePath: String, fileID knownFileID: Int64? = nil, root: Hash256, size: Int64, etag: String?, observed: Bool
    ) async -> Result {
        guard let http else { return .skipped("no signaling server") }
        if let reason = enrollmentGate.failed { return .failed(reason) }
        do {
            let fileID: Int64
            let currentEtag: String
            if let knownFileID, let etag {
                (fileID, currentEtag) = (knownFileID, etag)
            } else {
                let item = try await client.item(at: remotePath)
                guard let id = item.fileID, let itemEtag = item.etag else {
                    return .skipped("the server gave no file id or etag")
                }
                guard item.size == size, etag.map({ Self.bare($0) == Self.bare(itemEtag) }) ?? true else {
                    return .skipped("the file changed on the server since")
                }
                (fileID, currentEtag) = (id, itemEtag)
            }
            let lineage = VersionEntry.lineage(instance: Self.instance(client.credentials.server), fileID: "\(fileID)")
            var head = try await self.head(http, lineage)
            var enrolled = false
            for _ in 0...maximumRetries {
                if let head, Self.bare(head.etag) == Self.bare(currentEtag) { return .known(version: head.version) }
                let entry = try VersionEntry.signed(
                    lineage: lineage, previous: head,
                    operation: observed ? .observed : (head == nil ? .create : .modify),
                    contentRoot: root, size: UInt64(size), etag: currentEtag, authorUser: client.credentials.userID,
                    time: Int64(Date().timeIntervalSince1970), device: try identity.signingKey())
                let answer = try await http.request(
                    "POST", "/v1/log/append",
                    body: Data((head?.chainHash ?? .zero).bytes + LogEntry.version(entry).encoded))
                switch answer.status {
                case 200:
                    let leaf = (answer.json?["leafIndex"] as? NSNumber)?.intValue ?? -1
                    return .appended(version: entry.version, leafIndex: leaf)
                case 409:
                    // A lost race (or a stale head): sign again on top of the head the log has now.
                    head = try Self.head(fromConflict: answer, lineage: lineage)
                case 403 where !enrolled:
                    guard
                        let enrollment = DeviceEnrollment(
                            signalURL: http.base.absoluteString, client: client, identity: identity, logger: logger)
                    else { return .failed("bad signaling server URL") }
                    let logger = self.logger
                    try await enrollmentGate.enroll {
                        let done = try await enrollment.run(.enroll)
                        logger.info("device enrolled in the version log", metadata: ["leaf": "\(done.leafIndex)"])
                    }
                    enrolled = true
                default:
                    return .failed("the version log refused the entry (\(answer.status)): \(answer.text)")
                }
            }
            return .failed("the version log's head kept moving; gave up after \(maximumRetries) tries")
        } catch {
            return .failed("\(error)")
        }
    }

    /// An etag without its quotes (PROPFIND and headers quote it; compare the value).
    static func bare(_ etag: String) -> String { etag.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }

    private func head(_ http: LogHTTP, _ lineage: Hash256) async throws -> VersionEntry? {
        let answer = try await http.request("GET", "/v1/log/head?lineage=" + lineage.hex)
        switch answer.status {
        case 404: return nil
        case 200: return try Self.entry(answer.json, lineage: lineage)
        default: throw VersionLogError("the version log answered \(answer.status): \(answer.text)")
        }
    }

    private static func head(fromConflict answer: LogHTTP.Answer, lineage: Hash256) throws -> VersionEntry? {
        guard let object = answer.json else { throw VersionLogError("a 409 without a head") }
        if object["head"] is NSNull { return nil }
        return try entry(object["head"] as? [String: Any], lineage: lineage)
    }

    /// The head's entry, checked: a version of this lineage whose chain hash recomputes.
    private static func entry(_ object: [String: Any]?, lineage: Hash256) throws -> VersionEntry {
        guard let base64 = object?["entry"] as? String, let bytes = Data(base64Encoded: base64),
            case .version(let entry) = try LogEntry(encoded: Array(bytes)), entry.lineage == lineage,
            entry.chainHash == entry.computedChainHash
        else { throw VersionLogError("the version log's head is not a version of this file") }
        return entry
    }
}

/// Runs one enrollment for concurrent appends: the first that meets 403 starts it, the others that meet 403 meanwhile
/// (put appends eight at a time) wait for the same one instead of each sharing a request with the server. Its outcome
/// stands for the rest of the process.
final class EnrollmentGate: Sendable {
    private let running = Mutex<Task<Void, any Error>?>(nil)
    private let failure = Mutex<String?>(nil)

    func enroll(_ start: @escaping @Sendable () async throws -> Void) async throws {
        let task = running.withLock { current -> Task<Void, any Error> in
            if let current { return current }
            let task = Task { try await start() }
            current = task
            return task
        }
        do {
            try await task.value
        } catch {
            failure.withLock { $0 = $0 ?? "\(error)" }
            throw error
        }
    }

    /// Why the enrollment failed, once it has: the device cannot append in this process, so later versions are not
    /// sent (a get of 2,000 files sent 4,000 requests to learn 2,000 times what the first answer said).
    var failed: String? { failure.withLock { $0 } }
}
