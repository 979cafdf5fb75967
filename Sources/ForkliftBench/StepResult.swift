import Histogram

/// Failures of one kind in a step, with the first message seen.
public struct ErrorTally: Sendable, Equatable {
    /// "HTTP 500", "timeout", "connection closed", "connect failed", "not sent".
    public var kind: String
    public var count: Int
    public var firstMessage: String
}

/// How a step drives load.
public enum LoadMode: Sendable, Equatable {
    /// Closed loop: this many clients, each on its own keep-alive connection, one request at a time.
    case concurrency(Int)
    /// Open loop: Poisson arrivals at this many requests/s; latency counts from the intended send time.
    case rate(Double)

    public var label: String {
        switch self {
        case .concurrency(let clients): "c=\(clients)"
        case .rate(let rate): "rate=\(Self.number(rate))/s"
        }
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}

/// Latency percentiles in milliseconds.
public struct LatencySummary: Sendable, Equatable {
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var p999: Double
    public var max: Double
    public var mean: Double

    /// From a histogram of microseconds.
    init(_ histogram: Histogram<UInt64>) {
        func ms(_ value: UInt64) -> Double { Double(value) / 1000 }
        p50 = ms(histogram.valueAtPercentile(50))
        p90 = ms(histogram.valueAtPercentile(90))
        p99 = ms(histogram.valueAtPercentile(99))
        p999 = ms(histogram.valueAtPercentile(99.9))
        max = ms(histogram.max)
        mean = histogram.mean / 1000
    }
}

/// Forklift's own view of a step, from `/metrics` before and after it.
public struct ServerSideStats: Sendable, Equatable {
    public var batches: Double
    public var meanBatchSize: Double?
    public var meanQueueMilliseconds: Double?
    /// A worker's mean time on one batch (Forklift's `forklift_compute_duration_seconds`).
    public var meanComputeMilliseconds: Double?
}

/// Everything measured in one step.
public struct StepResult: Sendable {
    public var mode: LoadMode
    public var seconds: Double
    /// Requests answered with 2xx.
    public var succeeded: Int
    public var samples: Int
    public var errors: [ErrorTally]
    /// Latency of the successful requests.
    public var latency: LatencySummary?
    /// Each request's latency minus its own compute time (the server's `Server-Timing`): what
    /// serving adds. Nil unless every successful response reported its compute time.
    public var latencyOverCompute: LatencySummary? = nil
    public var server: ServerSideStats?
    /// User + system CPU time of this process during the step.
    public var clientCPUSeconds: Double
    /// True when Ctrl-C cut the step short.
    public var interrupted: Bool
    /// Connections that were open at the end (open loop may add some when the server falls behind).
    public var connections: Int

    public var failed: Int { errors.reduce(0) { $0 + $1.count } }
    public var requests: Int { succeeded + failed }
    public var requestsPerSecond: Double { seconds > 0 ? Double(succeeded) / seconds : 0 }
    public var samplesPerSecond: Double { seconds > 0 ? Double(samples) / seconds : 0 }
    /// The client's CPU time as a share of one core over the step.
    public var clientCPUCores: Double { seconds > 0 ? clientCPUSeconds / seconds : 0 }
    public var allFailed: Bool { succeeded == 0 && failed > 0 }

    /// "all 120 requests failed: HTTP 500 ×120 (first: …)".
    public var failureSummary: String {
        let kinds = errors.sorted { $0.count > $1.count }.map { "\($0.kind) ×\($0.count) (first: \($0.firstMessage))" }
        return "all \(failed) requests failed: " + kinds.joined(separator: "; ")
    }
}
