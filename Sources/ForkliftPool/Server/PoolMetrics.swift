import Metrics

/// The pool's metrics, emitted through swift-metrics; the server bootstraps the backend.
struct PoolMetrics: Sendable {
    enum RestartReason: String, Sendable {
        case crash, timeout, zygote
    }

    struct PerModel: Sendable {
        let batchSize: Recorder
        let queueDuration: Timer
        /// The engine's run of one batch in the worker: no transfer, batching or splitting.
        let computeDuration: Timer
        let queueDepth: Gauge
    }

    let models: [PerModel]
    let busyWorkers = Gauge(label: "forklift_busy_workers")
    let liveWorkers = Gauge(label: "forklift_live_workers")

    init(modelNames: [String]) {
        models = modelNames.map { name in
            PerModel(
                batchSize: Recorder(label: "forklift_batch_size", dimensions: [("model", name)], aggregate: true),
                queueDuration: Timer(label: "forklift_queue_duration_seconds", dimensions: [("model", name)]),
                computeDuration: Timer(label: "forklift_compute_duration_seconds", dimensions: [("model", name)]),
                queueDepth: Gauge(label: "forklift_queue_depth", dimensions: [("model", name)])
            )
        }
    }

    func restarted(_ reason: RestartReason) {
        Counter(label: "forklift_worker_restarts_total", dimensions: [("reason", reason.rawValue)]).increment()
    }
}
