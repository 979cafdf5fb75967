import CoreMetrics
import Foundation
import Metrics
import Prometheus
import Synchronization

/// The process's Prometheus registry. swift-metrics allows one bootstrap per process, so this
/// is done once in `forklift serve`; the pool's metrics (queue time, batch size, queue depth,
/// busy and live workers, restarts) flow into the same registry through swift-metrics.
public enum MetricsBootstrap {
    private static let registry = Mutex<PrometheusCollectorRegistry?>(nil)

    /// Bootstraps swift-metrics with a Prometheus factory on the first call; later calls return
    /// the same registry.
    public static func prometheus() -> PrometheusCollectorRegistry {
        registry.withLock { existing in
            if let existing { return existing }
            let created = PrometheusCollectorRegistry()
            var factory = PrometheusMetricsFactory(registry: created)
            // Inference latencies here run from tens of microseconds (small MLPs) to seconds.
            factory.defaultDurationHistogramBuckets = [
                .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
                .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
            ]
            // Value histograms are batch sizes: powers of two up to the largest max_batch_size.
            factory.defaultValueHistogramBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
            MetricsSystem.bootstrap(factory)
            existing = created
            return created
        }
    }
}

/// The server's own metrics: requests by model and outcome, and their latency. Handles are
/// cached because making one goes through the registry's lock and name checks.
public final class ServerMetrics: Sendable {
    public static let requestsTotal = "forklift_requests_total"
    public static let requestDuration = "forklift_request_duration_seconds"

    private let counters = Mutex<[String: CoreMetrics.Counter]>([:])
    private let timers = Mutex<[String: CoreMetrics.Timer]>([:])
    /// Model names that are served; anything else is counted as "_unknown" so clients cannot grow the label set.
    private let knownModels: Set<String>
    public let registry: PrometheusCollectorRegistry?

    /// The success counter and latency timer of each known model, made up front: every served
    /// request records into them, and this way without a lock, a key string or a cache lookup.
    private let successes: [String: (counter: CoreMetrics.Counter, timer: CoreMetrics.Timer)]

    public init(models: [String], registry: PrometheusCollectorRegistry?) {
        knownModels = Set(models)
        self.registry = registry
        var successes: [String: (counter: CoreMetrics.Counter, timer: CoreMetrics.Timer)] = [:]
        for model in knownModels {
            successes[model] = (
                CoreMetrics.Counter(label: Self.requestsTotal, dimensions: [("model", model), ("outcome", Self.success)]),
                CoreMetrics.Timer(label: Self.requestDuration, dimensions: [("model", model)])
            )
        }
        self.successes = successes
    }

    static let success = "success"

    public func record(model: String, outcome: String, seconds: Double) {
        if outcome == Self.success, let handles = successes[model] {
            handles.counter.increment()
            handles.timer.recordSeconds(seconds)
            return
        }
        let label = knownModels.contains(model) ? model : "_unknown"
        let counter = counters.withLock { cache in
            let key = label + "\u{0}" + outcome
            if let existing = cache[key] { return existing }
            let made = CoreMetrics.Counter(label: Self.requestsTotal, dimensions: [("model", label), ("outcome", outcome)])
            cache[key] = made
            return made
        }
        counter.increment()
        let timer = timers.withLock { cache in
            if let existing = cache[label] { return existing }
            let made = CoreMetrics.Timer(label: Self.requestDuration, dimensions: [("model", label)])
            cache[label] = made
            return made
        }
        timer.recordSeconds(seconds)
    }

    /// Prometheus text exposition of everything in the registry.
    public func exposition() -> [UInt8] {
        guard let registry else { return Array("# metrics are not enabled\n".utf8) }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(8192)
        registry.emit(into: &buffer)
        return buffer
    }
}
