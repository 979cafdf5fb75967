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

        init(batchSize: Int) throws {
            scheduler = Scheduler(
                names: ["m"], configuration: PoolConfiguration(), metrics: PoolMetrics(modelNames: ["m"]), idleCheck: 30)
            scheduler.lock.lock()
            scheduler.configureLocked(batchSizes: [batchSize])
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

        func enqueue(_ count: Int) {
            scheduler.lock.lock()
            for _ in 0..<count {
                #expect(
                    scheduler.enqueueLocked(PendingRequest(model: 0, inputs: [], samples: 1, completion: { _ in }), zygoteReady: true)
                        == nil)
            }
            scheduler.lock.unlock()
            for _ in 0..<count { scheduler.wakeOneWorker() }
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
