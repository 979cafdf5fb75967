import Foundation

/// One run as the plot draws it: a point per step.
public struct PlotSeries: Sendable {
    public struct Point: Sendable {
        /// Concurrency (closed loop) or offered rate (open loop).
        public var x: Double
        public var requestsPerSecond: Double
        public var p50: Double?
        public var p99: Double?
        /// What the server's instances could compute at this step's batch size, in requests/s.
        public var computeCeiling: Double?
    }

    public var label: String
    public var isOpenLoop: Bool
    public var points: [Point]

    public init(label: String, isOpenLoop: Bool, points: [Point]) {
        self.label = label
        self.isOpenLoop = isOpenLoop
        self.points = points
    }

    /// The series of a report.
    public init(report: BenchReport, label: String? = nil) {
        let named = [report.model?.serverName, report.model?.model].compactMap { $0 }.joined(separator: " ")
        self.label = label ?? report.label ?? (named.isEmpty ? report.endpoint : named)
        isOpenLoop = report.steps.first.map { if case .rate = $0.mode { true } else { false } } ?? false
        points = report.steps.filter { $0.succeeded > 0 }.map { step in
            let x: Double
            switch step.mode {
            case .concurrency(let clients): x = Double(clients)
            case .rate(let rate): x = rate
            }
            var ceiling: Double?
            if let compute = report.compute,
                let perInstance = compute.samplesPerSecond[ComputeComparison.batch(for: step, clientBatch: report.batch)]
            {
                ceiling = perInstance * Double(compute.instances) / Double(max(report.batch, 1))
            }
            return Point(
                x: x, requestsPerSecond: step.requestsPerSecond, p50: step.latency?.p50, p99: step.latency?.p99, computeCeiling: ceiling)
        }
    }

    /// The series of a JSON file that `--json` wrote (for plotting several runs together).
    public init(jsonFile path: String, label: String? = nil) throws(BenchError) {
        guard let data = FileManager.default.contents(atPath: path),
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
            let steps = object["steps"] as? [[String: Any]]
        else {
            throw BenchError(.badInput, "\(path): not a JSON file written by forklift bench --json")
        }
        let server = (object["server"] as? [String: Any])?["name"] as? String
        self.label = label ?? (object["label"] as? String) ?? [server, object["model"] as? String].compactMap { $0 }.joined(separator: " ")
        isOpenLoop = steps.first?["rate"] != nil
        let batch = max((object["batch"] as? NSNumber)?.doubleValue ?? 1, 1)
        points = steps.compactMap { step in
            guard let x = ((step["concurrency"] ?? step["rate"]) as? NSNumber)?.doubleValue,
                let rate = (step["requests_per_second"] as? NSNumber)?.doubleValue, (step["succeeded"] as? NSNumber)?.intValue ?? 0 > 0
            else { return nil }
            let latency = step["latency_ms"] as? [String: Any]
            var ceiling: Double?
            if let efficiency = (step["efficiency"] as? NSNumber)?.doubleValue, efficiency > 0,
                let samples = (step["samples_per_second"] as? NSNumber)?.doubleValue
            {
                ceiling = samples / efficiency / batch
            }
            return Point(
                x: x, requestsPerSecond: rate, p50: (latency?["p50"] as? NSNumber)?.doubleValue,
                p99: (latency?["p99"] as? NSNumber)?.doubleValue, computeCeiling: ceiling)
        }
    }
}
