import HarpClient
import SwarmKit
import Testing

/// The decision tree of `get` as plain values: facts and events in, steps out.
@Suite("Fetch plan")
struct FetchPlanTests {
    let swarmFacts = FetchPlan.Facts(hasSignaling: true)

    @Test func aValidSidecarGoesThroughTheSwarmThenSamplesTheServerThenRenames() {
        var plan = FetchPlan(swarmFacts)
        #expect(plan.start() == .readSidecar)
        #expect(plan.next(after: .sidecarRead(.found(.valid))) == .fetchFromSwarm(useServer: true))
        #expect(plan.next(after: .swarmFinished) == .compareWithServer(.sample))
        #expect(plan.next(after: .compared(mismatchAt: nil)) == .finishFromSwarm(republishSidecar: false))
        #expect(plan.notes.isEmpty)
    }

    /// A file the comparison would read whole (256 KiB or less) comes in one GET: no sidecar is read, published or
    /// seeded, since a swarm cannot save the server anything for it.
    @Test func aFileTooSmallForASwarmComesFromTheServerWithNoSidecar() {
        var plan = FetchPlan(FetchPlan.Facts(hasSignaling: true, seedAfter: true, tooSmallForASwarm: true))
        #expect(plan.start() == .fetchFromServer)
        #expect(plan.next(after: .serverFinished(sameRootAsSidecar: false)) == .finishFromServer(seed: false))
        #expect(plan.notes.count == 1 && plan.notes[0].hasPrefix("a small file: one request to the server"))
        #expect(ServerComparison.comparesWhole(size: 256 << 10))
        #expect(!ServerComparison.comparesWhole(size: (256 << 10) + 1))
    }

    /// With `--no-server` a small file still goes through its swarm (and is compared with the server).
    @Test func aSmallFileWithNoServerStillUsesItsSwarm() {
        var plan = FetchPlan(FetchPlan.Facts(hasSignaling: true, useServer: false, tooSmallForASwarm: true))
        #expect(plan.start() == .readSidecar)
        #expect(plan.next(after: .sidecarRead(.found(.valid))) == .fetchFromSwarm(useServer: false))
    }

    @Test func verifyServerComparesEveryByte() {
        var plan = FetchPlan(FetchPlan.Facts(hasSignaling: true, verifyServer: true))
        _ = plan.start()
        _ = plan.next(after: .sidecarRead(.found(.valid)))
        #expect(plan.next(after: .swarmFinished) == .compareWithServer(.everyByte))
    }

    @Test func anEtagMovedByALockIsComparedThenRepublished() {
        var plan = FetchPlan(swarmFacts)
        _ = plan.start()
        #expect(plan.next(after: .sidecarRead(.found(.needsSpotCheck))) == .fetchFromSwarm(useServer: true))
        _ = plan.next(after: .swarmFinished)
        #expect(plan.next(after: .compared(mismatchAt: nil)) == .finishFromSwarm(republishSidecar: true))
        #expect(plan.notes.count == 1 && plan.notes[0].hasPrefix("etag moved"))
    }

    @Test(arguments: [FetchPlan.SidecarFinding.none(note: nil), .found(.stale), .none(note: "unreadable")])
    func withoutAUsableSidecarTheServerSendsAndASidecarIsPublished(finding: FetchPlan.SidecarFinding) {
        var plan = FetchPlan(FetchPlan.Facts(hasSignaling: true, seedAfter: true))
        _ = plan.start()
        #expect(plan.next(after: .sidecarRead(finding)) == .fetchFromServer)
        #expect(plan.next(after: .serverFinished(sameRootAsSidecar: false)) == .publishSidecar)
        #expect(plan.next(after: .publishEnded(.published)) == .finishFromServer(seed: true))
        #expect(plan.notes.last == "published the sidecar")
    }

    @Test func aFolderTheUserMayNotWriteGetsNoSidecarAndIsNotSeeded() {
        var plan = FetchPlan(FetchPlan.Facts(hasSignaling: true, seedAfter: true))
        _ = plan.start()
        _ = plan.next(after: .sidecarRead(.none(note: nil)))
        _ = plan.next(after: .serverFinished(sameRootAsSidecar: false))
        #expect(plan.next(after: .publishEnded(.notAllowed)) == .finishFromServer(seed: false))
        #expect(plan.notes.last == "no write access to the folder: no sidecar published")
    }

    @Test func aSwarmCopyThatDiffersFromTheServerFallsBackToTheServerAndReplacesTheSidecar() {
        var plan = FetchPlan(swarmFacts)
        _ = plan.start()
        _ = plan.next(after: .sidecarRead(.found(.valid)))
        _ = plan.next(after: .swarmFinished)
        #expect(plan.next(after: .compared(mismatchAt: 4096)) == .fetchFromServer)
        #expect(plan.next(after: .serverFinished(sameRootAsSidecar: false)) == .publishSidecar)
        #expect(plan.notes.contains { $0.contains("differs from the server's file at byte 4096") })
        #expect(plan.notes.contains("the sidecar's content root differs from the server's bytes: replacing it"))
    }

    @Test func withNoServerADifferingCopyFails() {
        var plan = FetchPlan(FetchPlan.Facts(hasSignaling: true, useServer: false))
        _ = plan.start()
        #expect(plan.next(after: .sidecarRead(.found(.valid))) == .fetchFromSwarm(useServer: false))
        _ = plan.next(after: .swarmFinished)
        #expect(plan.next(after: .compared(mismatchAt: 7)) == .fail(.differsFromServer(offset: 7)))
    }

    @Test func noManifestFromPeersFallsBackToTheServerOrFailsWithNoServer() {
        var plan = FetchPlan(swarmFacts)
        _ = plan.start()
        _ = plan.next(after: .sidecarRead(.found(.valid)))
        #expect(plan.next(after: .noManifestFromPeers) == .fetchFromServer)

        var peersOnly = FetchPlan(FetchPlan.Facts(hasSignaling: true, useServer: false))
        _ = peersOnly.start()
        _ = peersOnly.next(after: .sidecarRead(.found(.valid)))
        #expect(
            peersOnly.next(after: .noManifestFromPeers)
                == .fail(.peersOnly("no peer has this file and --no-server was given")))
    }

    @Test func ownAccessRulesMeanTheServerAloneAndNoSidecar() {
        var plan = FetchPlan(FetchPlan.Facts(hasOwnAccessRules: true, hasSignaling: true, seedAfter: true))
        #expect(plan.start() == .fetchFromServer)
        #expect(plan.next(after: .serverFinished(sameRootAsSidecar: false)) == .finishFromServer(seed: false))
        #expect(plan.notes == ["the file has its own access rules: fetched from the server only"])
    }

    @Test func withoutSignalingTheServerSendsAndNothingIsPublished() {
        var plan = FetchPlan(FetchPlan.Facts())
        #expect(plan.start() == .fetchFromServer)
        #expect(plan.next(after: .serverFinished(sameRootAsSidecar: false)) == .finishFromServer(seed: false))
        #expect(
            FetchPlan(FetchPlan.Facts(useServer: false)).startingStep
                == .fail(.peersOnly("no swarm for this file and --no-server was given")))
    }

    @Test func aFileStillUploadingComesFromPeersOnlyWithoutAComparison() {
        var plan = FetchPlan(FetchPlan.Facts(uploading: true, hasSignaling: true))
        #expect(plan.start() == .fetchFromSwarm(useServer: false))
        #expect(plan.next(after: .swarmFinished) == .finishFromSwarm(republishSidecar: false))
        #expect(
            FetchPlan(FetchPlan.Facts(uploading: true)).startingStep
                == .notFound("upload in progress; needs a signaling server"))
    }

    @Test func aServerCopyWithTheSidecarsRootKeepsTheSidecar() {
        var plan = FetchPlan(FetchPlan.Facts(hasSignaling: true, seedAfter: true))
        _ = plan.start()
        _ = plan.next(after: .sidecarRead(.found(.valid)))
        _ = plan.next(after: .swarmFinished)
        _ = plan.next(after: .compared(mismatchAt: 1))
        #expect(plan.next(after: .serverFinished(sameRootAsSidecar: true)) == .finishFromServer(seed: true))
    }
}

extension FetchPlan {
    /// The first step of a fresh plan.
    var startingStep: Step {
        var copy = self
        return copy.start()
    }
}
