import ForkliftEngine
import Foundation
import Testing

@testable import ForkliftPool

/// The weights live once, in the zygote, and the workers share them copy-on-write.
@Suite(.serialized) struct SharedWeightsTests {
    typealias Support = PoolTestSupport

    struct Measured {
        var rss: [Int] = []
        var pss: [Int] = []
        var rssAfterRequests: [Int] = []
        var pssAfterRequests: [Int] = []
        var sharedAfterRequests: [Int] = []
    }

    private func read(_ pids: [Int32]) throws -> (rss: [Int], pss: [Int], shared: [Int]) {
        let memory = try pids.map { try #require(Support.memory($0)) }
        return (memory.map(\.rss), memory.map(\.pss), memory.map(\.shared))
    }

    /// Starts a 4-worker pool on `url` and reads each worker's memory once the pool is ready
    /// (what the assertion uses: both pools measured at the same point), then again after some
    /// requests (reported only: running a model adds its activations, which are not weights).
    private func measure(_ url: URL, input: [Int]) async throws -> Measured {
        let entry = try Support.entry(url)
        let pool = WorkerPool(models: [entry], configuration: try Support.configuration(workers: 4), logger: Support.logger)
        try await pool.start()
        var measured = Measured()
        (measured.rss, measured.pss, _) = try read(pool.workerPIDs)
        let count = input.reduce(1, *)
        let tensor = Support.wire([Float](repeating: 0.1, count: count), shape: input)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 { group.addTask { _ = try await pool.infer(InferenceRequest(model: entry.name, inputs: [tensor])) } }
            try await group.waitForAll()
        }
        (measured.rssAfterRequests, measured.pssAfterRequests, measured.sharedAfterRequests) = try read(pool.workerPIDs)
        await pool.shutdown(grace: .seconds(30))
        return measured
    }

    @Test func fourWorkersShareTheWeights() async throws {
        let weightsBytes = try #require(try FileManager.default.attributesOfItem(atPath: Support.resnet18.path)[.size] as? Int)
        #expect(weightsBytes >= 40_000_000, "the test needs a model of at least 40 MB")
        // Base: the same pool on the tiny digits model (0.2 MB of weights) measures what a worker
        // costs without big weights: the binary, the Swift and BLAS runtimes, the session.
        let base = try await measure(Support.digits, input: [1, 64])
        let big = try await measure(Support.resnet18, input: [1, 3, 224, 224])
        let baseKB = base.pss.reduce(0, +) / max(base.pss.count, 1)
        let weightsKB = weightsBytes / 1024
        let budgetKB = weightsKB * 3 / 2 + 4 * baseKB
        let totalKB = big.pss.reduce(0, +)
        print("digits workers, ready: RSS \(base.rss) kB, PSS \(base.pss) kB (base = mean PSS \(baseKB) kB)")
        print("digits workers, after 8 requests: RSS \(base.rssAfterRequests) kB, PSS \(base.pssAfterRequests) kB")
        print("resnet18 workers, ready: RSS \(big.rss) kB, PSS \(big.pss) kB; total PSS \(totalKB) kB")
        print(
            "resnet18 workers, after 8 requests: RSS \(big.rssAfterRequests) kB, PSS \(big.pssAfterRequests) kB, "
                + "shared \(big.sharedAfterRequests) kB")
        print("weights \(weightsKB) kB; budget 1.5 × weights + 4 × base = \(budgetKB) kB")
        #expect(big.pss.count == 4)
        #expect(totalKB < budgetKB, "workers' total PSS \(totalKB) kB ≥ budget \(budgetKB) kB: weights are not shared")
        // Running the model adds private activations and BLAS buffers, but the weights stay
        // shared: every worker still shares at least 90% of the weights' size with the others.
        for shared in big.sharedAfterRequests {
            #expect(shared * 10 >= weightsKB * 9, "a worker shares only \(shared) kB after running: weights were copied")
        }
    }
}
