import HarpBasics
import Testing

@Suite struct BackoffTests {
    @Test func doublesFromBaseUpToTheCap() {
        let backoff = Backoff(base: .milliseconds(250), cap: .seconds(8))
        let delays = (0...7).map { backoff.delay(forAttempt: $0) }
        #expect(
            delays == [
                .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8),
                .seconds(8), .seconds(8),
            ])
    }

    @Test func aCapThatIsNotAPowerOfTwoTimesTheBaseIsReachedExactly() {
        let backoff = Backoff(base: .milliseconds(200), cap: .seconds(1))
        #expect(backoff.delay(forAttempt: 2) == .milliseconds(800))
        #expect(backoff.delay(forAttempt: 3) == .seconds(1))
    }

    @Test(arguments: [Int.max, 63, 64, 1_000_000])
    func hugeAttemptsStayAtTheCapWithoutOverflow(_ attempt: Int) {
        let backoff = Backoff(base: .nanoseconds(1), cap: .seconds(30))
        #expect(backoff.delay(forAttempt: attempt) == .seconds(30))
    }

    @Test func negativeAttemptsAndDegenerateValues() {
        #expect(Backoff(base: .seconds(1), cap: .seconds(4)).delay(forAttempt: -3) == .seconds(1))
        #expect(Backoff(base: .seconds(5), cap: .seconds(2)).delay(forAttempt: 0) == .seconds(2))
        #expect(Backoff(base: .zero, cap: .seconds(2)).delay(forAttempt: 10) == .zero)
        #expect(Backoff(base: .seconds(-1), cap: .seconds(2)).base == .zero)
    }

    @Test func jitterStaysInTheUpperHalf() {
        let backoff = Backoff(base: .milliseconds(100), cap: .seconds(10))
        var generator = SplitMix64(seed: 7)
        for attempt in 0..<12 {
            let ceiling = backoff.delay(forAttempt: attempt)
            for _ in 0..<50 {
                let delay = backoff.jitteredDelay(forAttempt: attempt, using: &generator)
                #expect(delay >= ceiling / 2 && delay <= ceiling)
            }
        }
    }

    @Test func jitterIsReproducibleWithASeededGenerator() {
        let backoff = Backoff(base: .milliseconds(100), cap: .seconds(10))
        var first = SplitMix64(seed: 42)
        var second = SplitMix64(seed: 42)
        let a = (0..<8).map { backoff.jitteredDelay(forAttempt: $0, using: &first) }
        let b = (0..<8).map { backoff.jitteredDelay(forAttempt: $0, using: &second) }
        #expect(a == b)
    }
}

/// A small seeded generator, so the jitter tests are deterministic.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
