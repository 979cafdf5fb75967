import ForkliftBench
import Foundation
@preconcurrency import Glibc

/// `forklift bench` resolved: the server checked, the requests built, the steps listed.
struct BenchPlan {
    let options: Bench
    let target: BenchTarget
    let description: ModelDescription?
    let payloads: [RequestPayload]
    let steps: [LoadMode]
    let threads: Int

    init(_ options: Bench) throws(BenchError) {
        self.options = options
        target = try BenchTarget(parsing: options.url)
        steps = try options.loadSteps()
        let largest = steps.map { if case .concurrency(let clients) = $0 { clients } else { 2 } }.max() ?? 1
        threads = options.threads ?? max(1, min(2, ProcessInfo.processInfo.activeProcessorCount, largest))
        let probeLoop = MultiThreadedProbe()
        defer { probeLoop.shutdown() }
        let fetch = HTTPFetch(target: target, group: probeLoop.group, timeout: .seconds(Int64(max(options.timeout, 1))))
        switch options.endpoint {
        case "infer":
            guard let model = options.model else { throw BenchError(.badInput, "--model NAME is required for --endpoint infer") }
            let described = try ServerProbe.describe(model: model, fetch: fetch)
            description = described
            payloads = try PayloadFactory.make(
                model: described, target: target, source: try InputSource.parse(options.input), batch: options.batch, binary: options.binary
            )
        case "health":
            let answer = try fetch.get("/v2/health/live")
            guard answer.status == 200 else {
                throw BenchError(.badURL, "\(target.description) does not speak V2: GET /v2/health/live answered \(answer.status)")
            }
            description = nil
            payloads = [
                RequestPayload(
                    method: .GET, path: target.path("/v2/health/live"), host: target.hostHeader, contentType: nil, body: nil, samples: 1)
            ]
        case let path where path.hasPrefix("/"):
            guard let bodyPath = options.body, let data = FileManager.default.contents(atPath: bodyPath) else {
                throw BenchError(.badInput, "--endpoint \(path) needs --body FILE (a readable file)")
            }
            _ = try fetch.get(path)  // any HTTP answer shows the server is there
            description = nil
            payloads = [
                RequestPayload(
                    method: .POST, path: target.path(path), host: target.hostHeader, contentType: "application/json", body: [UInt8](data),
                    samples: options.batch)
            ]
        default:
            throw BenchError(.badInput, "--endpoint takes infer, health or a path such as /predict, got '\(options.endpoint)'")
        }
    }

    /// Runs every step, printing rows as they finish; returns the exit status.
    func execute() -> Int32 {
        let interruption = Interruption()
        let signals = InterruptWatcher(interruption)
        defer { signals.stop() }
        var settings = RunSettings(target: target, payloads: payloads)
        settings.duration = options.duration
        settings.requests = options.requests
        settings.warmup = options.warmup
        settings.timeout = options.timeout
        settings.maxConnections = options.maxConnections
        settings.thinkTime = options.thinkTime / 1000
        let runner = LoadRunner(settings: settings, threads: threads, interruption: interruption)
        defer { runner.shutdown() }
        let metrics = metricsReader(runner)
        var report = BenchReport(
            target: target, model: description, endpoint: options.endpoint, batch: payloads.first?.samples ?? options.batch,
            binary: options.binary, threads: threads)
        report.label = options.label
        report.thinkTime = settings.thinkTime
        let progress = ProgressLine()

        print(header())
        print(BenchReport.tableHeader)
        print(BenchReport.tableRule)
        fflush(nil)
        for mode in steps {
            let step = runner.run(mode, metrics: metrics) { progress.show($0) }
            progress.clear()
            print(BenchReport.row(step))
            for line in BenchReport.errorLines(step) { print(line) }
            fflush(nil)
            report.steps.append(step)
            if step.interrupted || interruption.isRequested {
                report.interrupted = true
                break
            }
        }
        if let path = options.compareCompute, !report.interrupted {
            let batches = Set(report.steps.map { ComputeComparison.batch(for: $0, clientBatch: report.batch) })
            do {
                report.compute = try ComputeComparison.measure(modelPath: path, batches: batches, instances: description?.instances ?? 1)
            } catch {
                FileHandle.standardError.write(Data("forklift bench: \(error.description)\n".utf8))
            }
        }
        for line in report.computeLines() { print(line) }
        if report.interrupted { print("interrupted: \(report.steps.count) of \(steps.count) steps ran") }
        fflush(nil)
        var status: Int32 = report.interrupted ? 130 : 0
        if !report.steps.isEmpty, report.steps.allSatisfy({ $0.succeeded == 0 }), !report.interrupted { status = 1 }
        if let path = options.json, !write(report.json(), to: path) { status = max(status, 1) }
        if let path = options.plot {
            var series = [PlotSeries(report: report)]
            for file in options.plotWith {
                do { series.append(try PlotSeries(jsonFile: file)) } catch {
                    FileHandle.standardError.write(Data("forklift bench: \(error.description)\n".utf8))
                }
            }
            let title =
                description.map { "\($0.model) on \($0.serverName) at \(target.description)" }
                ?? "\(options.endpoint) at \(target.description)"
            let note =
                "forklift bench, \(ISO8601DateFormatter().string(from: Date())), \(ProcessInfo.processInfo.activeProcessorCount) cores"
            if !write(Data(SVGPlot(title: title, series: series, note: note).render().utf8), to: path) { status = max(status, 1) }
        }
        return status
    }

    private func header() -> String {
        var parts = ["target \(target.description)", "endpoint \(options.endpoint)"]
        if let description {
            parts.append("model \(description.model) on \(description.serverName) \(description.serverVersion)")
            parts.append("batch \(payloads.first?.samples ?? 1)")
            parts.append(options.binary ? "binary tensors" : "JSON tensors")
        }
        let length = options.requests.map { "\($0) requests" } ?? "\(LoadModeText.seconds(options.duration)) s"
        parts.append("\(length) per step after \(LoadModeText.seconds(options.warmup)) s warm-up")
        if options.thinkTime > 0 { parts.append("\(LoadModeText.seconds(options.thinkTime)) ms think time per client") }
        parts.append("\(threads) client thread(s)")
        return parts.joined(separator: ", ")
    }

    /// Forklift's `/metrics` totals for the model, or nil for other servers.
    private func metricsReader(_ runner: LoadRunner) -> (() -> ForkliftMetricsSample?)? {
        guard let description, description.isForklift else { return nil }
        let fetch = HTTPFetch(target: target, group: runner.group, timeout: .seconds(10))
        return {
            guard let answer = try? fetch.get("/metrics"), answer.status == 200 else { return nil }
            return ForkliftMetricsSample(exposition: answer.text, model: description.model)
        }
    }

    private func write(_ data: Data, to path: String) -> Bool {
        do {
            try data.write(to: URL(fileURLWithPath: path))
            return true
        } catch {
            FileHandle.standardError.write(Data("forklift bench: cannot write \(path): \(error.localizedDescription)\n".utf8))
            return false
        }
    }
}

enum LoadModeText {
    static func seconds(_ value: Double) -> String { value == value.rounded() ? String(Int(value)) : String(value) }
}
