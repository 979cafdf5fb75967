import ForkliftEngine
import Foundation
import Testing

@testable import ForkliftPool

/// Real zygote and worker processes serving the committed digits model.
@Suite(.serialized) struct PoolServingTests {
    typealias Support = PoolTestSupport

    @Test func startReportsMetadataAndProcesses() async throws {
        let pool = WorkerPool(
            models: [try Support.entry(Support.digits)], configuration: try Support.configuration(workers: 2), logger: Support.logger)
        try await pool.start()
        let meta = try #require(pool.metadata.first)
        #expect(meta.name == "digits")
        #expect(meta.inputs.map(\.name) == ["float_input"])
        #expect(meta.inputs.first?.dtype == .float32)
        #expect(meta.inputs.first?.shape?.count == 2)
        #expect(meta.inputs.first?.shape?.last == .fixed(64))
        #expect(meta.inputs.first?.shape?.first?.value == nil)
        #expect(meta.outputs.map(\.name) == ["label", "probabilities"])
        #expect(meta.outputs.map(\.dtype) == [.int64, .float32])
        #expect(meta.maxBatchSize == 32)
        #expect(meta.labels?.count == 10)
        #expect(pool.isReady && pool.isReady(model: "digits"))
        #expect(!pool.isReady(model: "nope"))
        let workers = pool.workerPIDs
        let zygote = try #require(pool.zygotePID)
        #expect(workers.count == 2)
        for pid in workers { #expect(Support.status(pid)?.parent == zygote, "workers are forked by the zygote") }
        #expect(Support.status(zygote)?.parent == getpid())
        // Each connection's thread names itself as it starts, which may be just after start() returns.
        let named = await Support.eventually(.seconds(10)) {
            Support.threadNames().isSuperset(of: ["pool-worker-1", "pool-worker-2", "pool-zygote-1"])
        }
        #expect(named, "\(Support.threadNames().sorted())")
        await pool.shutdown(grace: .seconds(10))
        #expect(!pool.isReady)
    }

    @Test func inferEqualsInProcessSession() async throws {
        let entry = try Support.entry(Support.digits)
        let session = Session(model: try Model(contentsOf: entry.path))
        let pool = WorkerPool(models: [entry], configuration: try Support.configuration(workers: 1), logger: Support.logger)
        try await pool.start()
        for samples in [1, 3] {
            let values = Support.digitsInput(5, samples: samples)
            let result = try await pool.infer(InferenceRequest(model: entry.name, inputs: [Support.wire(values, shape: [samples, 64])]))
            let expected = try Support.reference(session, values, shape: [samples, 64])
            #expect(result.outputs.count == 2)
            #expect(result.outputs[0].shape == [samples] && result.outputs[1].shape == [samples, 10])
            #expect(Support.int64s(result.outputs[0]) == expected[0].int64Array())
            #expect(Support.floats(result.outputs[1]) == expected[1].floatArray(), "a batch of one request runs exactly as in-process")
            #expect(result.batchSize == samples)
        }
        await #expect(throws: PoolError.unknownModel("nope")) {
            _ = try await pool.infer(InferenceRequest(model: "nope", inputs: []))
        }
        await pool.shutdown(grace: .seconds(10))
        await #expect(throws: PoolError.shuttingDown) {
            _ = try await pool.infer(InferenceRequest(model: entry.name, inputs: [Support.wire(Support.digitsInput(1), shape: [1, 64])]))
        }
    }

    /// Requests of 64 KB or more reach the worker through its shared region, which grows for a
    /// batch that does not fit; the answers are the in-process engine's, bit for bit.
    @Test func largeInputsTravelThroughTheSharedRegion() async throws {
        let entry = try Support.entry(Support.wideMLP)
        let session = Session(model: try Model(contentsOf: entry.path))
        let pool = WorkerPool(models: [entry], configuration: try Support.configuration(workers: 1), logger: Support.logger)
        try await pool.start()
        let worker = try #require(pool.workerPIDs.first)
        var regionSizes: [Int] = []
        // 1 sample is 3 KB (inline); 24 are 73 KB (the 4 MiB region); 1,400 are 4.2 MiB (a new
        // 8 MiB region); then 24 again, in the larger region.
        for (seed, samples) in [1, 24, 1400, 24].enumerated() {
            let values = (0..<(samples * 784)).map { Float(($0 &* 31 &+ seed * 7) % 97) / 97 }
            let result = try await pool.infer(InferenceRequest(model: entry.name, inputs: [Support.wire(values, shape: [samples, 784])]))
            let expected = try Support.reference(session, values, shape: [samples, 784])
            #expect(Support.floats(result.outputs[0]) == expected[0].floatArray(), "\(samples) samples")
            regionSizes.append(Support.sharedRegionBytes(worker))
        }
        #expect(regionSizes == [0, 4 << 20, 8 << 20, 8 << 20], "the worker maps one region, replaced when too small")
        await pool.shutdown(grace: .seconds(10))
    }

    @Test func concurrentRequestsAreBatchedAndEachGetsItsOwnAnswer() async throws {
        let entry = try Support.entry(Support.digits)
        let session = Session(model: try Model(contentsOf: entry.path))
        let count = 200
        var expected: [[Float]] = []
        for seed in 0..<count {
            expected.append(try Support.reference(session, Support.digitsInput(seed), shape: [1, 64])[1].floatArray())
        }
        let pool = WorkerPool(models: [entry], configuration: try Support.configuration(workers: 2), logger: Support.logger)
        try await pool.start()
        let results = try await withThrowingTaskGroup(of: (Int, InferenceResult).self) { group in
            for seed in 0..<count {
                group.addTask {
                    (
                        seed,
                        try await pool.infer(
                            InferenceRequest(model: entry.name, inputs: [Support.wire(Support.digitsInput(seed), shape: [1, 64])]))
                    )
                }
            }
            var all: [(Int, InferenceResult)] = []
            for try await item in group { all.append(item) }
            return all
        }
        #expect(results.count == count)
        for (seed, result) in results {
            #expect(Support.close(Support.floats(result.outputs[1]), expected[seed]), "request \(seed) got another request's answer")
            #expect(result.outputs[1].shape == [1, 10])
        }
        let largest = results.map(\.1.batchSize).max() ?? 0
        print("batch sizes seen: max \(largest), batches > 1 carried \(results.filter { $0.1.batchSize > 1 }.count) of \(count) requests")
        #expect(largest > 1, "200 concurrent requests on 2 workers should form batches")
        #expect(largest <= 32)
        await pool.shutdown(grace: .seconds(10))
    }

    /// `--busy-poll` in real processes: requests that came back at once leave the worker
    /// polling (runnable, not asleep in recv) for the poll time, 50 ms, and then asleep. A request
    /// after a long pause leaves it asleep at once. Each window of 120 samples (one a
    /// millisecond) starts just before its request; the request itself keeps the worker
    /// runnable for a sample or two.
    @Test func workerPollsAfterARequestThatCameBackQuickly() async throws {
        let entry = try Support.entry(Support.digits)
        var configuration = try Support.configuration(workers: 1)
        configuration.busyPoll = .milliseconds(50)
        let pool = WorkerPool(models: [entry], configuration: configuration, logger: Support.logger)
        try await pool.start()
        let worker = try #require(pool.workerPIDs.first)
        let request = InferenceRequest(model: entry.name, inputs: [Support.wire(Support.digitsInput(2), shape: [1, 64])])
        // Polling starts once nearly all recent requests have come back within the poll time.
        for _ in 0..<30 { _ = try await pool.infer(request) }
        let quick = try await Support.states(of: worker, for: .milliseconds(120)) { _ = try await pool.infer(request) }
        let polled = quick.filter { $0 == "R" }.count
        #expect(polled >= 15, "the request came back at once, so the worker polls for 50 ms: \(polled) of \(quick.count) samples runnable")
        try await Task.sleep(for: .milliseconds(300))
        let late = try await Support.states(of: worker, for: .milliseconds(120)) { _ = try await pool.infer(request) }
        let runnable = late.filter { $0 == "R" }.count
        #expect(
            runnable <= 5, "the request came 300 ms after the last, so the worker sleeps: \(runnable) of \(late.count) samples runnable")
        await pool.shutdown(grace: .seconds(10))
    }

    @Test func modelThatFailsToLoadFailsTheStart() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("forklift-bad-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("broken"), withIntermediateDirectories: true)
        try Data("not an onnx model".utf8).write(to: folder.appendingPathComponent("broken/model.onnx"))
        let entries = try ModelRepository.scan(folder)
        let pool = WorkerPool(models: entries, configuration: try Support.configuration(workers: 1), logger: Support.logger)
        do {
            try await pool.start()
            Issue.record("start must fail")
        } catch {
            guard case .loadFailed(let why) = error else { throw error }
            #expect(why.contains("broken") && why.contains("ONNX"), "\(why)")
        }
        #expect(!pool.isReady)
        #expect(pool.zygotePID == nil)
    }

    @Test func fullQueueIsRefusedAtOnce() async throws {
        let entry = try Support.entry(Support.digits)
        var configuration = try Support.configuration(workers: 1)
        configuration.maxQueue = 4
        // A long hold-back keeps a partial batch queued, so the queue fills deterministically.
        configuration.maxQueueDelay = .seconds(600)
        let pool = WorkerPool(models: [entry], configuration: configuration, logger: Support.logger)
        try await pool.start()
        let request = InferenceRequest(model: entry.name, inputs: [Support.wire(Support.digitsInput(2), shape: [1, 64])])
        let waiting = (0..<4).map { _ in Task { try await pool.infer(request) } }
        let filled = await Support.eventually { pool.queueDepth(model: entry.name) == 4 }
        #expect(filled)
        await #expect(throws: PoolError.queueFull(model: entry.name, capacity: 4)) {
            _ = try await pool.infer(request)
        }
        // Shutdown drains: the held requests are sent at once and complete.
        await pool.shutdown(grace: .seconds(30))
        for task in waiting {
            let result = try await task.value
            #expect(result.batchSize == 4)
        }
    }
}
