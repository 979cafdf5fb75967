import Testing

@testable import ForkliftServer

/// Which failed requests get a warning line: the first of each kind, then one per interval that
/// counts those it stands for. Instants are given, so no test waits on the clock.
@Suite struct RepeatedFailureLogTests {
    let start = ContinuousClock.now
    let full = RepeatedFailureLog.Kind(model: "digits", status: 503)

    func at(_ milliseconds: Int) -> ContinuousClock.Instant { start + .milliseconds(milliseconds) }

    @Test func firstOfAKindIsLoggedAndRepeatsWithinTheIntervalAreCounted() {
        let log = RepeatedFailureLog(interval: .seconds(1))
        #expect(log.admit(full, at: at(0)) == 0)
        #expect(log.admit(full, at: at(10)) == nil)
        #expect(log.admit(full, at: at(999)) == nil)
        #expect(log.admit(full, at: at(1000)) == 2, "the next line counts the two that went unlogged")
        #expect(log.admit(full, at: at(1500)) == nil)
        #expect(log.admit(full, at: at(5000)) == 1)
        #expect(log.admit(full, at: at(6001)) == 0)
    }

    @Test func kindsAreThrottledApart() {
        let log = RepeatedFailureLog(interval: .seconds(1))
        #expect(log.admit(full, at: at(0)) == 0)
        #expect(log.admit(.init(model: "digits", status: 504), at: at(1)) == 0, "another status")
        #expect(log.admit(.init(model: "resnet18", status: 503), at: at(2)) == 0, "another model")
        #expect(log.admit(full, at: at(3)) == nil)
    }

    @Test func zeroIntervalLogsEach() {
        let log = RepeatedFailureLog(interval: .zero)
        for milliseconds in [0, 0, 1, 1] { #expect(log.admit(full, at: at(milliseconds)) == 0) }
    }
}
