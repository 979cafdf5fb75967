/// Totals read from Forklift's `/metrics` (Prometheus text): batch sizes, queue time and compute
/// time of one model.
public struct ForkliftMetricsSample: Sendable, Equatable {
    public var batchSizeSum = 0.0
    public var batchCount = 0.0
    public var queueSecondsSum = 0.0
    public var queueCount = 0.0
    public var computeSecondsSum = 0.0
    public var computeCount = 0.0

    public static let batchSize = "forklift_batch_size"
    public static let queueDuration = "forklift_queue_duration_seconds"
    public static let computeDuration = "forklift_compute_duration_seconds"

    /// Sums the `_sum` and `_count` series of the histograms whose `model` label is `model`.
    public init(exposition text: String, model: String) {
        let label = "model=\"\(model)\""
        for line in text.split(separator: "\n") where line.hasPrefix("forklift_") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let series = line[..<space]
            let name = series.prefix { $0 != "{" }
            if series.contains("{"), !series.contains(label) { continue }
            switch name {
            case Self.batchSize + "_sum": batchSizeSum += value
            case Self.batchSize + "_count": batchCount += value
            case Self.queueDuration + "_sum": queueSecondsSum += value
            case Self.queueDuration + "_count": queueCount += value
            case Self.computeDuration + "_sum": computeSecondsSum += value
            case Self.computeDuration + "_count": computeCount += value
            default: continue
            }
        }
    }

    public init() {}

    /// What happened between `before` and `self`.
    public func since(_ before: ForkliftMetricsSample) -> ServerSideStats {
        let batches = batchCount - before.batchCount
        let queued = queueCount - before.queueCount
        let computed = computeCount - before.computeCount
        return ServerSideStats(
            batches: batches,
            meanBatchSize: batches > 0 ? (batchSizeSum - before.batchSizeSum) / batches : nil,
            meanQueueMilliseconds: queued > 0 ? 1000 * (queueSecondsSum - before.queueSecondsSum) / queued : nil,
            meanComputeMilliseconds: computed > 0 ? 1000 * (computeSecondsSum - before.computeSecondsSum) / computed : nil)
    }
}
