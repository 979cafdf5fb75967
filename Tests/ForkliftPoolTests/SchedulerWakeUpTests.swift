import Foundation
import Testing

@testable import ForkliftPool

/// Enqueues wake one idle worker thread, not all of them; these check that no wake-up is lost
/// on the way. The idle check is long, so a lost one stalls the test instead of being covered.
@Suite struct SchedulerWakeUpTests {
    /// A scheduler serving one model, with worker slots whose sockets stay quiet.
    final class Fixture: @unchecked Sendable {
        let scheduler: Scheduler
        private var peers: [Int32] = []

        /// Busy polling is off unless asked for: with it, a lost wake-up could go unseen.
        init(batchSize: Int, instances: Int? = nil, busyPoll: Duration = .zero) throws {
            var configuration = PoolConfiguration()
            configuration.busyPoll = busyPoll
            scheduler = Scheduler(
                names: ["m"], configuration: configuration, metrics: PoolMetrics(modelNames: ["m"]), idleCheck: 30)
            scheduler.lock.lock()
            scheduler.configureLocked(batchSizes: [batchSize], instances: [instances])
            scheduler.phase = .serving
            scheduler.lock.unlock()
        }

        deinit { for fd in peers { SocketIO.close(fd) } }

        func slot(_ id: Int) throws -> WorkerSlot {
            let (mine, theirs) = try SocketIO.socketPair()
            peers += [mine, theirs]
            let slot = WorkerSlot(id: id, pid: 0, fd: mine, generation: 1)
            scheduler.lock.lock()
            scheduler.workers[id] = slot
            scheduler.lock.unlock()
            return slot
        }

        /// Runs `nextBatch` for `slot` on its own thread, as a worker connection does.
        func waitForOrder(_ slot: WorkerSlot) -> OrderBox {
            let box = OrderBox()
            let thread = Thread { [scheduler] in box.set(scheduler.nextBatch(for: slot)) }
            thread.start()
            return box
        }

        /// Queues `count` requests and wakes a worker for each that one may take now, as the pool
        /// does. Returns, per request, whether one could.
        @discardableResult
        func enqueue(_ count: Int) -> [Bool] {
            scheduler.lock.lock()
            let wakes = (0..<count).map { _ in
                let result = scheduler.enqueueLocked(
                    PendingRequest(model: 0, inputs: [], samples: 1, completion: { _ in }), zygoteReady: true)
                guard case .success(let wake) = result else {
                    Issue.record("enqueue refused: \(result)")
                    return false
                }
                return wake
            }
            scheduler.lock.unlock()
            for wake in wakes where wake { scheduler.wakeOneWorker() }
            return wakes
        }

        /// Answers `slot`'s batch as its worker would, with no outputs.
        func finish(_ slot: WorkerSlot, _ batch: Batch) {
            let reply = Frame(kind: .result, batchID: batch.id, model: 0, requests: UInt32(batch.requests.count))
            scheduler.finish(slot, batch: batch, reply: reply, outputsPerRequest: 0)
        }

        func stop(_ slot: WorkerSlot) {
            scheduler.lock.lock()
            slot.stop = true
            scheduler.lock.unlock()
        }

        func stopAll() {
            scheduler.lock.lock()
            scheduler.phase = .stopped
            scheduler.lock.broadcast()
            scheduler.lock.unlock()
        }
    }

    /// What a worker thread was told, once it was told.
    final class OrderBox: @unchecked Sendable {
        private let condition = NSCondition()
        private var order: WorkerOrder?

        func set(_ value: WorkerOrder) {
            condition.lock()
            order = value
            condition.broadcast()
            condition.unlock()
        }

        /// The order, or nil when none came within `seconds`.
        func wait(seconds: Double) -> WorkerOrder? {
            condition.lock()
            defer { condition.unlock() }
            let deadline = Date(timeIntervalSinceNow: seconds)
            while order == nil && condition.wait(until: deadline) {}
            return order
        }
    }

    static func isRun(_ order: WorkerOrder?) -> Bool {
        if case .run? = order { return true }
        return false
    }

    /// A thread told to stop may be the one an enqueue woke: it must pass the wake-up on to a
    /// thread that can serve the request. Repeated, since which thread wakes is up to the kernel.
    @Test func stoppingWorkerPassesTheWakeUpOn() throws {
        for round in 0..<6 {
            let fixture = try Fixture(batchSize: 1)
            let stopping = try fixture.slot(1)
            let serving = try fixture.slot(2)
            let first = fixture.waitForOrder(stopping)
            Thread.sleep(forTimeInterval: 0.02)
            let second = fixture.waitForOrder(serving)
            Thread.sleep(forTimeInterval: 0.05)
            fixture.stop(stopping)
            fixture.enqueue(1)
            #expect(Self.isRun(second.wait(seconds: 5)), "round \(round): the request waited for the idle check")
            if case .stop? = first.wait(seconds: 0) {
            } else {
                fixture.stopAll()
                if case .stop? = first.wait(seconds: 5) {} else { Issue.record("round \(round): the stopping thread did not stop") }
            }
            fixture.stopAll()
        }
    }

    /// With an instance count of 1, a second batch of the model waits for the first to finish,
    /// even with another worker idle, and its request wakes no one; the worker that finishes takes it.
    @Test func instanceCountLimitsTheBatchesRunningAtOnce() throws {
        let fixture = try Fixture(batchSize: 1, instances: 1)
        let slots = try [fixture.slot(1), fixture.slot(2)]
        let orders = slots.map { fixture.waitForOrder($0) }
        Thread.sleep(forTimeInterval: 0.05)
        #expect(fixture.enqueue(1) == [true])
        let first = orders.map { $0.wait(seconds: 0.5) }
        let runningIndex = try #require(first.firstIndex { Self.isRun($0) }, "one worker takes the first request")
        guard case .run(let batch)? = first[runningIndex] else { return }
        #expect(fixture.enqueue(1) == [false], "the model is at its instance count")
        // Even woken (as another model's request, or a spurious wake-up, would), it must not take it.
        fixture.scheduler.wakeOneWorker()
        #expect(orders[1 - runningIndex].wait(seconds: 0.3) == nil, "the idle worker must not run a second batch")
        fixture.finish(slots[runningIndex], batch)
        let next = fixture.waitForOrder(slots[runningIndex])
        #expect(Self.isRun(next.wait(seconds: 5)), "the worker that finished takes the waiting request")
        #expect(orders[1 - runningIndex].wait(seconds: 0) == nil)
        fixture.stopAll()
    }

    /// Requests left after a full batch go to another idle worker without waiting.
    @Test func leftoverRequestsReachAnotherIdleWorker() throws {
        let fixture = try Fixture(batchSize: 2)
        let orders = try (1...3).map { id in fixture.waitForOrder(try fixture.slot(id)) }
        Thread.sleep(forTimeInterval: 0.05)
        fixture.enqueue(5)
        let ran = orders.filter { Self.isRun($0.wait(seconds: 5)) }.count
        #expect(ran == 3, "5 requests in batches of 2 keep 3 workers busy")
        fixture.stopAll()
    }
}
