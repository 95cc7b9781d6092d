import Synchronization
import Testing

@testable import HarpClient

/// `put -R` appends eight versions at once; a device that is not enrolled yet meets 403 on all of them, and must enroll
/// once (one share with the server's account), not eight times.
@Suite("Version log: one enrollment for concurrent appends")
struct EnrollmentGateTests {
    final class Count: Sendable {
        private let value = Mutex(0)
        func add() { value.withLock { $0 += 1 } }
        var current: Int { value.withLock { $0 } }
    }

    @Test func concurrentCallersShareOneEnrollment() async throws {
        let gate = EnrollmentGate()
        let runs = Count()
        let (released, release) = AsyncStream.makeStream(of: Void.self)
        let (started, start) = AsyncStream.makeStream(of: Void.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    try await gate.enroll {
                        runs.add()
                        start.yield()
                        // Held open until the test lets it end, so the other callers meet it running.
                        for await _ in released { break }
                    }
                }
            }
            for await _ in started { break }
            release.yield()
            try await group.waitForAll()
        }
        #expect(runs.current == 1)
        // Later appends reuse its outcome: nothing runs again.
        try await gate.enroll { runs.add() }
        #expect(runs.current == 1)
    }

    @Test func aFailedEnrollmentFailsEveryCaller() async {
        struct Refused: Error {}
        let gate = EnrollmentGate()
        #expect(gate.failed == nil)
        await #expect(throws: Refused.self) { try await gate.enroll { throw Refused() } }
        await #expect(throws: Refused.self) { try await gate.enroll {} }
        // The recorder asks this before every append: once it is set, nothing more is sent to the log.
        #expect(gate.failed != nil)
    }
}
