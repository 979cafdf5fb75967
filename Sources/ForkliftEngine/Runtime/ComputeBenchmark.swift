import Foundation

/// Compute-only throughput of a model in this process: what `forklift profile` prints and what
/// serving efficiency is measured against.
public enum ComputeBenchmark {
    public struct Result: Sendable {
        public let batch: Int
        public let runs: Int
        public let medianSeconds: Double
        public var samplesPerSecond: Double { Double(batch) / medianSeconds }
        /// Seconds per run spent in each op label, averaged over the timed runs.
        public let secondsPerOp: [String: Double]
    }

    /// Warms up, then times runs until at least `minTime` seconds and `minRuns` runs have passed.
    public static func measure(_ model: Model, batch: Int, minTime: Double = 1, minRuns: Int = 5) throws(EngineError) -> Result {
        let inputs = model.inputs.map { randomInput($0, batch: batch) }
        let session = Session(model: model)
        for _ in 0..<3 { _ = try session.run(inputs: inputs) }
        let profile = OpProfile()
        session.profile = profile
        var times: [Double] = []
        let start = OpProfile.now()
        while times.count < minRuns || OpProfile.now() - start < minTime {
            let begin = OpProfile.now()
            _ = try session.run(inputs: inputs)
            times.append(OpProfile.now() - begin)
        }
        times.sort()
        let median = times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
        return Result(
            batch: batch, runs: times.count, medianSeconds: median,
            secondsPerOp: profile.seconds.mapValues { $0 / Double(times.count) })
    }

    /// Random data shaped like `spec`, with symbolic dimensions set to `batch`.
    public static func randomInput(_ spec: ValueSpec, batch: Int) -> Tensor {
        let shape = (spec.shape ?? [.symbolic("N")]).map { $0.value ?? batch }
        let tensor = Tensor(dtype: spec.dtype, shape: shape)
        var generator = SystemRandomNumberGenerator()
        if spec.dtype == .float32 {
            for index in 0..<tensor.count { tensor.floats[index] = Float.random(in: -1...1, using: &generator) }
        }
        return tensor
    }
}
