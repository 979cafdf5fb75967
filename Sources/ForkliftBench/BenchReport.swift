import Foundation

/// A finished (or interrupted) run: what was asked, what each step measured, and the compute comparison.
public struct BenchReport: Sendable {
    public var target: BenchTarget
    public var model: ModelDescription?
    public var endpoint: String
    public var batch: Int
    public var binary: Bool
    public var threads: Int
    public var steps: [StepResult]
    public var compute: ComputeComparison?
    public var interrupted: Bool
    /// The run's name in plots (`--label`).
    public var label: String?
    /// Each closed-loop client's pause between a response and its next request, in seconds.
    public var thinkTime: Double = 0

    public init(
        target: BenchTarget, model: ModelDescription?, endpoint: String, batch: Int, binary: Bool, threads: Int, steps: [StepResult] = [],
        compute: ComputeComparison? = nil, interrupted: Bool = false
    ) {
        self.target = target
        self.model = model
        self.endpoint = endpoint
        self.batch = batch
        self.binary = binary
        self.threads = threads
        self.steps = steps
        self.compute = compute
        self.interrupted = interrupted
    }

    // MARK: table

    public static let tableHeader =
        "| step | req/s | samples/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | mean batch | queue ms | compute ms | p50 − compute ms | client CPU |"
    public static let tableRule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"

    /// One Markdown table row for a step.
    public static func row(_ step: StepResult) -> String {
        func ms(_ value: Double?) -> String { value.map { String(format: $0 < 10 ? "%.2f" : "%.1f", $0) } ?? "-" }
        let latency = step.latency
        let cells = [
            step.mode.label + (step.interrupted ? " (interrupted)" : ""),
            grouped(step.requestsPerSecond), grouped(step.samplesPerSecond),
            ms(latency?.p50), ms(latency?.p90), ms(latency?.p99), ms(latency?.p999), ms(latency?.max),
            String(step.failed),
            step.server?.meanBatchSize.map { String(format: "%.1f", $0) } ?? "-",
            ms(step.server?.meanQueueMilliseconds),
            ms(step.server?.meanComputeMilliseconds),
            ms(step.latencyOverCompute?.p50),
            String(format: "%.2f s (%.0f%% of a core)", step.clientCPUSeconds, 100 * step.clientCPUCores),
        ]
        return "| " + cells.joined(separator: " | ") + " |"
    }

    /// Lines under a step's row: how it failed.
    public static func errorLines(_ step: StepResult) -> [String] {
        if step.allFailed { return ["  \(step.mode.label): \(step.failureSummary)"] }
        return step.errors.map { "  \(step.mode.label): \($0.kind) ×\($0.count), first: \($0.firstMessage)" }
    }

    public func computeLines() -> [String] {
        guard let compute else { return [] }
        var lines = [
            "compute-only (in this process, \(compute.threads) BLAS thread, × \(compute.instances) server instance(s)):"
        ]
        for (batch, rate) in compute.samplesPerSecond.sorted(by: { $0.key < $1.key }) {
            lines.append("  batch \(batch): \(Self.grouped(rate)) samples/s per instance")
        }
        for step in steps {
            guard let share = compute.efficiency(of: step, clientBatch: batch) else { continue }
            let at = ComputeComparison.batch(for: step, clientBatch: batch)
            lines.append(
                "  \(step.mode.label): \(Self.grouped(step.samplesPerSecond)) samples/s end to end = "
                    + String(format: "%.0f%%", 100 * share) + " of compute-only at batch \(at)")
        }
        return lines
    }

    static func grouped(_ value: Double) -> String {
        let rounded = Int(value.rounded())
        if value < 100 && value != value.rounded() { return String(format: "%.1f", value) }
        let digits = String(abs(rounded))
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(character)
        }
        return (rounded < 0 ? "-" : "") + out
    }

    // MARK: JSON

    /// Every number, as a JSON object with sorted keys.
    public func json() -> Data {
        var object: [String: Any] = [
            "url": target.description, "endpoint": endpoint, "batch": batch, "binary": binary, "client_threads": threads,
            "interrupted": interrupted,
            "steps": steps.map { stepObject($0) },
        ]
        if let label { object["label"] = label }
        if thinkTime > 0 { object["think_time_ms"] = thinkTime * 1000 }
        if let model {
            object["model"] = model.model
            object["server"] = ["name": model.serverName, "version": model.serverVersion]
            if let instances = model.instances { object["server_instances"] = instances }
            if let maxBatch = model.maxBatchSize { object["max_batch_size"] = maxBatch }
        }
        if let compute {
            object["compute"] = [
                "threads": compute.threads, "instances": compute.instances,
                "samples_per_second": compute.samplesPerSecond.sorted { $0.key < $1.key }.map {
                    ["batch": $0.key, "samples_per_second": $0.value]
                },
            ]
        }
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])) ?? Data("{}".utf8)
    }

    private func stepObject(_ step: StepResult) -> [String: Any] {
        var object: [String: Any] = [
            "label": step.mode.label, "seconds": step.seconds, "requests": step.requests, "succeeded": step.succeeded,
            "failed": step.failed, "samples": step.samples, "requests_per_second": step.requestsPerSecond,
            "samples_per_second": step.samplesPerSecond, "client_cpu_seconds": step.clientCPUSeconds,
            "client_cpu_cores": step.clientCPUCores, "interrupted": step.interrupted, "connections": step.connections,
            "errors": step.errors.map { ["kind": $0.kind, "count": $0.count, "first_message": $0.firstMessage] },
        ]
        switch step.mode {
        case .concurrency(let clients): object["concurrency"] = clients
        case .rate(let rate): object["rate"] = rate
        }
        if let latency = step.latency {
            object["latency_ms"] = [
                "p50": latency.p50, "p90": latency.p90, "p99": latency.p99, "p99_9": latency.p999, "max": latency.max, "mean": latency.mean,
            ]
        } else {
            object["latency_ms"] = NSNull()
        }
        if let over = step.latencyOverCompute {
            object["latency_over_compute_ms"] = ["p50": over.p50, "p90": over.p90, "p99": over.p99, "mean": over.mean]
        } else {
            object["latency_over_compute_ms"] = NSNull()
        }
        if let server = step.server {
            object["server_side"] = [
                "batches": server.batches, "mean_batch_size": server.meanBatchSize.map { $0 as Any } ?? NSNull(),
                "mean_queue_ms": server.meanQueueMilliseconds.map { $0 as Any } ?? NSNull(),
                "mean_compute_ms": server.meanComputeMilliseconds.map { $0 as Any } ?? NSNull(),
            ]
        } else {
            object["server_side"] = NSNull()
        }
        if let compute {
            object["compute_batch"] = ComputeComparison.batch(for: step, clientBatch: batch)
            object["efficiency"] = compute.efficiency(of: step, clientBatch: batch).map { $0 as Any } ?? NSNull()
        }
        return object
    }
}
