import HarpBasics
import Testing

@Suite struct RateMeterTests {
    @Test func startsAtZero() {
        #expect(RateMeter().rate(at: 0) == 0)
        #expect(RateMeter().rate(at: 100) == 0)
    }

    @Test func aSteadyFlowReadsItsRate() {
        var meter = RateMeter(window: 2)
        // 1,000 bytes every 10 ms: 100,000 bytes per second, for 30 s (15 windows).
        var now = 0.0
        for _ in 0..<3000 {
            now += 0.01
            meter.add(1000, at: now)
        }
        let rate = meter.rate(at: now)
        #expect(abs(rate - 100_000) / 100_000 < 0.01)
    }

    @Test func aBurstFadesWithTheWindow() {
        var meter = RateMeter(window: 4)
        meter.add(4000, at: 10)
        #expect(meter.rate(at: 10) == 1000)
        let oneWindowLater = meter.rate(at: 14)
        #expect(abs(oneWindowLater - 1000 / 2.718281828) < 0.01)
        #expect(meter.rate(at: 60) < 1)
    }

    @Test func timeGoingBackCountsAsNoTimePassed() {
        var meter = RateMeter(window: 1)
        meter.add(100, at: 5)
        meter.add(100, at: 3)
        #expect(meter.rate(at: 5) == 200)
        #expect(meter.rate(at: 2) == 200)
    }

    @Test func aZeroWindowIsClamped() {
        var meter = RateMeter(window: 0)
        meter.add(1, at: 0)
        #expect(meter.window > 0)
        #expect(meter.rate(at: 0).isFinite)
    }
}
