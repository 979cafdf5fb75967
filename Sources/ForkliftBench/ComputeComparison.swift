import ForkliftEngine
import Foundation

/// Compute-only throughput of the model in this process, measured with the engine's own
/// benchmark (the one `forklift profile` prints), to say how close serving comes to it.
public struct ComputeComparison: Sendable {
    /// Samples/s of one engine instance at each batch size measured.
    public var samplesPerSecond: [Int: Double]
    /// Instances the server runs (its workers), by which one instance's throughput is multiplied.
    public var instances: Int
    public var threads: Int

    /// Measures each batch size once. Loading errors name the file.
    public static func measure(modelPath: String, batches: Set<Int>, instances: Int, threads: Int = 1) throws(BenchError)
        -> ComputeComparison
    {
        let model: Model
        do { model = try Model(contentsOf: URL(fileURLWithPath: modelPath)) } catch {
            throw BenchError(.badInput, "--compare-compute \(modelPath): \(error)")
        }
        BLAS.setThreads(threads)
        var results: [Int: Double] = [:]
        for batch in batches.sorted() {
            let size = model.isBatchable ? batch : 1
            do { results[batch] = try ComputeBenchmark.measure(model, batch: size, minTime: 1).samplesPerSecond } catch {
                throw BenchError(.failed, "--compare-compute \(modelPath) at batch \(size): \(error)")
            }
        }
        return ComputeComparison(samplesPerSecond: results, instances: max(instances, 1), threads: threads)
    }

    /// The batch size a step's compute is compared at: the server's mean batch when known, else the client's.
    public static func batch(for step: StepResult, clientBatch: Int) -> Int {
        guard let mean = step.server?.meanBatchSize else { return clientBatch }
        return max(1, Int(mean.rounded()))
    }

    /// End-to-end samples/s as a share of what the server's instances could compute at that batch size.
    public func efficiency(of step: StepResult, clientBatch: Int) -> Double? {
        guard let compute = samplesPerSecond[Self.batch(for: step, clientBatch: clientBatch)], compute > 0 else { return nil }
        return step.samplesPerSecond / (compute * Double(instances))
    }
}
