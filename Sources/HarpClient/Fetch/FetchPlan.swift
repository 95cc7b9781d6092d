public import SwarmKit

/// The decision tree of `get` for one file, as a value (docs/engine.md): access → sidecar validity → swarm or
/// server → fallback → comparison with the server → republish. It does no I/O: the fetcher tells it what happened
/// (`Event`) and carries out the `Step` it returns, so every branch is testable with plain values.
///
/// A file whose upload is still running has a pending sidecar and nothing on the server: it is fetched from peers
/// only and not compared. Every other file starts from the facts the server gave (its own access rules) and the
/// configuration (a signaling server, `--no-server`, `--verify-server`, `--seed`).
public struct FetchPlan: Sendable, Equatable {
    /// What is known before the fetch starts.
    public struct Facts: Sendable, Equatable {
        /// The file's upload is still running (found by its pending sidecar).
        public var uploading = false
        /// The file has its own ACL rules: it travels from the server only, with no sidecar (DESIGN §4).
        public var hasOwnAccessRules = false
        /// A signaling server is configured.
        public var hasSignaling = false
        /// The server may send bytes (no `--no-server`).
        public var useServer = true
        /// `--verify-server`: compare every byte from peers, not samples.
        public var verifyServer = false
        /// `--seed`: keep seeding the file afterwards.
        public var seedAfter = false
        /// The file is so small that the comparison after a swarm fetch would read it whole from the server
        /// (`ServerComparison.comparesWhole(size:)`): a swarm cannot save the server a byte or a request, and one GET
        /// is all the fetch needs.
        public var tooSmallForASwarm = false

        public init(
            uploading: Bool = false, hasOwnAccessRules: Bool = false, hasSignaling: Bool = false,
            useServer: Bool = true, verifyServer: Bool = false, seedAfter: Bool = false, tooSmallForASwarm: Bool = false
        ) {
            self.uploading = uploading
            self.hasOwnAccessRules = hasOwnAccessRules
            self.hasSignaling = hasSignaling
            self.useServer = useServer
            self.verifyServer = verifyServer
            self.seedAfter = seedAfter
            self.tooSmallForASwarm = tooSmallForASwarm
        }

        /// Whether the file comes from the server with no sidecar read, published or seeded: a small file while the
        /// server may be used (with `--no-server` it still goes through its swarm, compared with the server).
        var serverOnlyForSize: Bool { tooSmallForASwarm && useServer }
    }

    /// What a sidecar read found.
    public enum SidecarFinding: Sendable, Equatable {
        /// No usable sidecar; `note` says why when there was one that could not be used.
        case none(note: String?)
        /// A sidecar that verifies, and how it compares with the server's version.
        case found(Sidecar.Validity)
    }

    /// How publishing a sidecar ended.
    public enum PublishOutcome: Sendable, Equatable {
        case published
        case notAllowed
        case failed(String)
    }

    /// What the fetcher reports back after carrying out a step.
    public enum Event: Sendable, Equatable {
        case sidecarRead(SidecarFinding)
        /// Every chunk arrived and verified against the sidecar's root.
        case swarmFinished
        /// No peer gave the manifest in time.
        case noManifestFromPeers
        /// The comparison with the server ended; `mismatchAt` is the first differing byte, if any.
        case compared(mismatchAt: Int64?)
        /// The server download ended and was indexed; whether its root is the sidecar's in use (false without one).
        case serverFinished(sameRootAsSidecar: Bool)
        case publishEnded(PublishOutcome)
    }

    /// What the fetcher does next.
    public enum Step: Sendable, Equatable {
        /// Read the file's sidecar and report `.sidecarRead`.
        case readSidecar
        /// Fetch through the sidecar's swarm (peers, and the server as web seed when `useServer`).
        case fetchFromSwarm(useServer: Bool)
        /// Compare the assembled bytes with the server's before the rename.
        case compareWithServer(ServerComparison.Depth)
        /// Download from the server alone, index the bytes, report `.serverFinished`.
        case fetchFromServer
        /// Publish a fresh sidecar (manifest first) and report `.publishEnded`.
        case publishSidecar
        /// Rename the swarm's bytes into place; republish the sidecar with the new etag when asked (a lock moved it).
        case finishFromSwarm(republishSidecar: Bool)
        /// The server's bytes are in place; seed them when asked, with the sidecar published or confirmed.
        case finishFromServer(seed: Bool)
        /// The file is not there for this user (an upload in progress needs a signaling server).
        case notFound(String)
        case fail(FetchError)
    }

    public let facts: Facts
    /// What the user should know about the choices made, in order.
    public private(set) var notes: [String] = []
    /// Whether a sidecar is in use (valid, or only its etag moved).
    private var sidecarInUse = false
    /// The sidecar's etag is not the server's (a lock moved it): republish after the comparison passes.
    private var etagMoved = false
    /// A sidecar for the server's bytes is published or confirmed.
    private var sidecarReady = false

    public init(_ facts: Facts) {
        self.facts = facts
    }

    /// The first step.
    public mutating func start() -> Step {
        if facts.uploading {
            guard facts.hasSignaling else { return .notFound("upload in progress; needs a signaling server") }
            notes.append("fetched from peers while the upload is running; not checked against the server")
            return .fetchFromSwarm(useServer: false)
        }
        if facts.hasOwnAccessRules {
            notes.append("the file has its own access rules: fetched from the server only")
            return server(orFail: "no swarm for this file and --no-server was given")
        }
        guard facts.hasSignaling else {
            notes.append("no signaling server configured: fetching from the server alone")
            return server(orFail: "no swarm for this file and --no-server was given")
        }
        if facts.serverOnlyForSize {
            notes.append(
                "a small file: one request to the server (through a swarm it would still be read whole from the "
                    + "server, to compare it)")
            return .fetchFromServer
        }
        return .readSidecar
    }

    /// The step after `event`.
    public mutating func next(after event: Event) -> Step {
        switch event {
        case .sidecarRead(let finding):
            switch finding {
            case .found(.valid):
                sidecarInUse = true
                return .fetchFromSwarm(useServer: facts.useServer)
            case .found(.needsSpotCheck):
                sidecarInUse = true
                etagMoved = true
                notes.append(
                    "etag moved but size and mtime did not: using the sidecar, compared with the server before the "
                        + "rename")
                return .fetchFromSwarm(useServer: facts.useServer)
            case .found(.stale):
                notes.append("the sidecar is stale (the file changed); using the server")
            case .none(let note):
                notes.append(note ?? "no sidecar yet: fetching from the server, then publishing one")
            }
            return server(orFail: "no swarm for this file and --no-server was given")
        case .swarmFinished:
            if facts.uploading { return .finishFromSwarm(republishSidecar: false) }
            return .compareWithServer(facts.verifyServer ? .everyByte : .sample)
        case .noManifestFromPeers:
            if facts.uploading { return .fail(.peersOnly("no peer gave the manifest of the file being uploaded")) }
            notes.append("no peer answered with the manifest in time: using the server")
            return server(orFail: "no peer has this file and --no-server was given")
        case .compared(nil):
            return .finishFromSwarm(republishSidecar: etagMoved)
        case .compared(let offset?):
            // The swarm's bytes verify against the sidecar's root, but they are not the server's file: the sidecar
            // lies or was made from a modified copy. The server's bytes decide (and replace it).
            notes.append(
                "the copy from peers differs from the server's file at byte \(offset): the sidecar does not describe "
                    + "the server's file; fetching from the server")
            guard facts.useServer else { return .fail(.differsFromServer(offset: offset)) }
            return .fetchFromServer
        case .serverFinished(let sameRoot):
            sidecarReady = sidecarInUse && sameRoot
            if sidecarInUse && !sameRoot {
                notes.append("the sidecar's content root differs from the server's bytes: replacing it")
            }
            if !sidecarReady && facts.hasSignaling && !facts.hasOwnAccessRules && !facts.serverOnlyForSize {
                return .publishSidecar
            }
            return finishFromServer()
        case .publishEnded(let outcome):
            switch outcome {
            case .published:
                sidecarReady = true
                notes.append("published the sidecar")
            case .notAllowed: notes.append("no write access to the folder: no sidecar published")
            case .failed(let why): notes.append("could not publish the sidecar: \(why)")
            }
            return finishFromServer()
        }
    }

    private func server(orFail why: String) -> Step {
        facts.useServer ? .fetchFromServer : .fail(.peersOnly(why))
    }

    private func finishFromServer() -> Step {
        .finishFromServer(
            seed: facts.seedAfter && facts.hasSignaling && !facts.hasOwnAccessRules && !facts.serverOnlyForSize
                && sidecarReady)
    }
}
