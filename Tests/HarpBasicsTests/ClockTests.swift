import HarpBasics
import Testing

@Suite struct ClockTests {
    @Test func monotonicClockStartsNearZeroAndNeverGoesBack() {
        let clock = MonotonicClock()
        var last = clock.now
        #expect(last >= 0 && last < 1)
        for _ in 0..<1000 {
            let now = clock.now
            #expect(now >= last)
            last = now
        }
    }

    @Test func monotonicClockConvertsInstantsBothWays() {
        let clock = MonotonicClock()
        let deadline = clock.instant(atSeconds: 2.5)
        #expect(abs(clock.seconds(of: deadline) - 2.5) < 1e-9)
        #expect(deadline > ContinuousClock.now)
    }

    @Test func manualClockMovesOnlyWhenTold() {
        let clock = ManualClock(start: 10)
        #expect(clock.now == 10)
        clock.advance(by: 1.5)
        #expect(clock.now == 11.5)
        clock.advance(by: .milliseconds(500))
        #expect(clock.now == 12)
        clock.set(to: 20)
        #expect(clock.now == 20)
    }

    @Test func aTimeSourceDrivesARateMeter() {
        let clock = ManualClock()
        let source: any TimeSource = clock
        var meter = RateMeter(window: 1)
        meter.add(500, at: source.now)
        clock.advance(by: 1)
        #expect(meter.rate(at: source.now) < 500)
    }

    @Test func manualClockIsSharedAcrossTasks() async {
        let clock = ManualClock()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<10 { group.addTask { clock.advance(by: 1) } }
        }
        #expect(clock.now == 10)
    }
}
