import ForkliftEngine
import Foundation
import Synchronization
import Testing

@testable import ForkliftPool

/// Crashes, hangs, zygote death and shutdown, with real processes and real signals.
@Suite(.serialized) struct PoolRecoveryTests {
    typealias Support = PoolTestSupport

    /// Load from `clients` tasks until told to stop; counts answers and failures.
    final class Load: Sendable {
        let answered = Atomic<Int>(0)
        let failures = Mutex<[String]>([])
        let stop = Atomic<Bool>(false)

        func run(pool: WorkerPool, model: String, clients: Int) -> Task<Void, Never> {
            Task {
                await withTaskGroup(of: Void.self) { group in
                    for client in 0..<clients {
                        group.addTask {
                            var seed = client
                            while !self.stop.load(ordering: .relaxed) {
                                let request = InferenceRequest(
                                    model: model, inputs: [Support.wire(Support.digitsInput(seed), shape: [1, 64])])
                                do {
                                    let result = try await pool.infer(request)
                                    if result.outputs.count != 2 {
                                        self.failures.withLock { $0.append("request \(seed): \(result.outputs.count) outputs") }
                                    }
                                } catch {
                                    self.failures.withLock { $0.append("request \(seed): \(error)") }
                                }
                                self.answered.add(1, ordering: .relaxed)
                                seed += clients
                            }
                        }
                    }
                }
            }
        }

        var count: Int { answered.load(ordering: .relaxed) }
    }

    final class Tally: Sendable {
        let value = Atomic<Int>(0)
    }

    @Test func killedWorkerUnderLoadLosesNoRequestAndIsReplaced() async throws {
        let entry = try Support.entry(Support.digits)
        let pool = WorkerPool(models: [entry], configuration: try Support.configuration(workers: 2), logger: Support.logger)
        try await pool.start()
        let load = Load()
        let running = load.run(pool: pool, model: entry.name, clients: 8)
        #expect(await Support.eventually { load.count >= 200 })
        let victim = try #require(pool.workerPIDs.first)
        #expect(kill(victim, SIGKILL) == 0)
        let replaced = await Support.eventually { pool.workerPIDs.count == 2 && !pool.workerPIDs.contains(victim) }
        #expect(replaced, "a new worker replaces the killed one")
        let after = load.count
        #expect(await Support.eventually { load.count >= after + 200 })
        load.stop.store(true, ordering: .relaxed)
        await running.value
        let failures = load.failures.withLock { $0 }
        #expect(failures.isEmpty, "failed requests: \(failures.prefix(5))")
        print("answered \(load.count) requests; worker \(victim) killed; workers now \(pool.workerPIDs)")
        await pool.shutdown(grace: .seconds(10))
    }

    @Test func killedZygoteIsRestartedWhileWorkersKeepServing() async throws {
        let entry = try Support.entry(Support.digits)
        let pool = WorkerPool(models: [entry], configuration: try Support.configuration(workers: 2), logger: Support.logger)
        try await pool.start()
        let oldZygote = try #require(pool.zygotePID)
        let oldWorkers = pool.workerPIDs
        #expect(kill(oldZygote, SIGKILL) == 0)
        // The existing workers answer while the zygote is gone or reloading.
        for seed in 0..<20 {
            let result = try await pool.infer(
                InferenceRequest(model: entry.name, inputs: [Support.wire(Support.digitsInput(seed), shape: [1, 64])]))
            #expect(result.outputs.count == 2)
        }
        #expect(pool.isReady)
        let restarted = await Support.eventually { pool.zygotePID.map { $0 != oldZygote } ?? false }
        #expect(restarted, "a new zygote is spawned")
        let newZygote = try #require(pool.zygotePID)
        #expect(Support.alive(newZygote))
        // A worker lost now is forked by the new zygote.
        let victim = try #require(oldWorkers.first)
        #expect(kill(victim, SIGKILL) == 0)
        let replaced = await Support.eventually {
            pool.workerPIDs.count == 2 && pool.workerPIDs.contains { Support.status($0)?.parent == newZygote }
        }
        #expect(replaced, "the replacement comes from the new zygote")
        await pool.shutdown(grace: .seconds(10))
        let gone = await Support.eventually(.seconds(20)) { !(oldWorkers + pool.workerPIDs + [newZygote]).contains(where: Support.alive) }
        #expect(gone, "no worker or zygote outlives the pool")
    }

    @Test func batchPastItsDeadlineTimesOutAndTheWorkerIsReplaced() async throws {
        let entry = try Support.entry(Support.wideMLP)
        var configuration = try Support.configuration(workers: 1)
        // A 512-sample batch of the wide MLP is ~6 GFLOP: far past one millisecond on any CPU.
        configuration.timeout = .milliseconds(1)
        let pool = WorkerPool(models: [entry], configuration: configuration, logger: Support.logger)
        try await pool.start()
        let victim = try #require(pool.workerPIDs.first)
        let values = [Float](repeating: 0.5, count: 512 * 784)
        await #expect(throws: PoolError.timeout(model: entry.name, seconds: 0.001)) {
            _ = try await pool.infer(InferenceRequest(model: entry.name, inputs: [Support.wire(values, shape: [512, 784])]))
        }
        let replaced = await Support.eventually { pool.workerPIDs.count == 1 && pool.workerPIDs != [victim] }
        #expect(replaced)
        #expect(await Support.eventually { !Support.alive(victim) }, "the hung worker was killed")
        await pool.shutdown(grace: .seconds(10))
    }

    @Test func shutdownFinishesAcceptedRequestsAndLeavesNoProcess() async throws {
        let entry = try Support.entry(Support.wideMLP)
        let pool = WorkerPool(models: [entry], configuration: try Support.configuration(workers: 2), logger: Support.logger)
        try await pool.start()
        let processes = pool.workerPIDs + [try #require(pool.zygotePID)]
        let finished = Tally()
        let clients = 16
        let values = [Float](repeating: 0.25, count: 32 * 784)
        let tasks = (0..<clients).map { _ in
            Task {
                defer { finished.value.add(1, ordering: .relaxed) }
                return try await pool.infer(InferenceRequest(model: entry.name, inputs: [Support.wire(values, shape: [32, 784])]))
            }
        }
        // Every request is accepted (queued, running or done) before shutdown begins.
        let accepted = await Support.eventually {
            pool.pendingCount(model: entry.name) + finished.value.load(ordering: .relaxed) == clients
        }
        #expect(accepted)
        await pool.shutdown(grace: .seconds(120))
        for task in tasks {
            let result = try await task.value
            #expect(result.outputs.first?.shape == [32, 10])
        }
        for pid in processes { #expect(!Support.alive(pid) && Support.status(pid) == nil, "process \(pid) is left after shutdown") }
        await pool.shutdown(grace: .seconds(1))  // idempotent
    }
}
