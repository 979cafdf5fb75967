import Foundation
import Testing

@testable import ForkliftPool

/// `--busy-poll`: after a batch at light load, the connection thread and its worker poll for the
/// next request instead of sleeping; at heavier load, after a pause, or when it is off, they sleep.
@Suite struct BusyPollTests {
    typealias Fixture = SchedulerWakeUpTests.Fixture

    /// Takes the next batch for `slot`, which must come within `seconds`.
    private func take(_ fixture: Fixture, _ slot: WorkerSlot, seconds: Double = 5) throws -> Batch {
        let order = fixture.waitForOrder(slot).wait(seconds: seconds)
        guard case .run(let batch)? = order else {
            throw PoolTestSupport.Missing(description: "no batch within \(seconds) s: \(String(describing: order))")
        }
        return batch
    }

    /// Starts a thread waiting for `slot`'s next batch, queues one request `delay` seconds later,
    /// and returns whether that enqueue asked for a wake-up, and the batch the thread took.
    private func enqueueForWaitingThread(_ fixture: Fixture, _ slot: WorkerSlot, after delay: TimeInterval) throws -> (
        wake: Bool, batch: Batch
    ) {
        let waiting = fixture.waitForOrder(slot)
        Thread.sleep(forTimeInterval: delay)
        let wake = fixture.enqueue(1) == [true]
        guard case .run(let batch)? = waiting.wait(seconds: 5) else {
            throw PoolTestSupport.Missing(description: "the waiting thread took no batch within 5 s (wake-up asked: \(wake))")
        }
        return (wake, batch)
    }

    /// Serves `count` requests one at a time, each queued as soon as the last is answered, as one
    /// client does. Returns whether each batch asked its worker to poll.
    @discardableResult
    private func serveOneByOne(_ fixture: Fixture, _ slot: WorkerSlot, count: Int) throws -> [Bool] {
        try (0..<count).map { _ in
            fixture.enqueue(1)
            let batch = try take(fixture, slot)
            fixture.finish(slot, batch)
            return batch.pollAfter
        }
    }

    /// Requests that come back quickly, one at a time: once nearly all recent ones have, batches
    /// ask their worker to poll, and the idle thread polls too, so the next request needs no
    /// wake-up. With the idle check at 30 s, a request that the polling thread did not take would
    /// stall here.
    @Test func requestsThatComeBackQuicklyArePolledFor() throws {
        let fixture = try Fixture(batchSize: 8, busyPoll: .seconds(1))
        let slot = try fixture.slot(1)
        let polled = try serveOneByOne(fixture, slot, count: 30)
        #expect(polled.first == false, "no request has come back yet")
        #expect(polled.suffix(10).allSatisfy { $0 }, "30 requests came back within the poll time: \(polled)")
        let next = try enqueueForWaitingThread(fixture, slot, after: 0.05)
        #expect(!next.wake, "the polling thread takes it without a wake-up")
        #expect(next.batch.pollAfter)
        fixture.stopAll()
    }

    /// After a pause longer than the poll time, nobody polls: sparse traffic costs no CPU.
    @Test func aLongPauseStopsPolling() throws {
        let fixture = try Fixture(batchSize: 8, busyPoll: .milliseconds(20))
        let slot = try fixture.slot(1)
        let polled = try serveOneByOne(fixture, slot, count: 30)
        #expect(polled.last == true, "\(polled)")
        let late = try enqueueForWaitingThread(fixture, slot, after: 0.2)
        #expect(late.wake, "the thread polled for 20 ms, then went to sleep, and needs a wake-up")
        #expect(!late.batch.pollAfter, "the request came 200 ms after the pool went idle")
        fixture.stopAll()
    }

    /// Batches of several requests mean load that polling would only take CPU from.
    @Test func batchesOfSeveralRequestsStopPolling() throws {
        let fixture = try Fixture(batchSize: 8, busyPoll: .seconds(1))
        let slot = try fixture.slot(1)
        #expect(try serveOneByOne(fixture, slot, count: 30).last == true)
        var polled: [Bool] = []
        for _ in 0..<3 {
            fixture.enqueue(4)
            let batch = try take(fixture, slot)
            #expect(batch.requests.count == 4)
            polled.append(batch.pollAfter)
            fixture.finish(slot, batch)
        }
        #expect(polled.last == false, "after batches of 4, the worker sleeps (asked to poll: \(polled))")
        fixture.stopAll()
    }

    /// A worker whose neighbour is busy is not asked to poll: the pool is not idle.
    @Test func noPollingWhileAnotherWorkerIsBusy() throws {
        let fixture = try Fixture(batchSize: 1, busyPoll: .seconds(1))
        let slots = try [fixture.slot(1), fixture.slot(2)]
        try serveOneByOne(fixture, slots[0], count: 30)
        fixture.enqueue(1)
        let busy = try take(fixture, slots[0])
        #expect(busy.pollAfter)
        fixture.enqueue(1)
        let other = try take(fixture, slots[1])
        #expect(!other.pollAfter, "worker 1 is still running its batch")
        fixture.stopAll()
    }

    @Test func zeroTurnsPollingOff() throws {
        let fixture = try Fixture(batchSize: 8)
        let slot = try fixture.slot(1)
        #expect(try serveOneByOne(fixture, slot, count: 30).allSatisfy { !$0 })
        #expect(fixture.enqueue(1) == [true])
        fixture.stopAll()
    }
}
