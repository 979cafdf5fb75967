import ArgumentParser
import ForkliftBench
import Foundation
@preconcurrency import Glibc

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drive load at a V2 inference server (Forklift, Triton, MLServer) and report throughput and latency.",
        discussion: """
            Closed loop by default: a sweep of concurrency steps, one keep-alive connection per client. --rate switches to an \
            open loop with Poisson arrivals, timed from the intended send time. Exit status 2 when the server, URL or model \
            is wrong; 1 when every request of every step failed; 130 after Ctrl-C.
            """)

    @Argument(help: "The server, e.g. http://127.0.0.1:8080 (or host:port).") var url: String
    @Option(help: "The model to load (required for --endpoint infer).") var model: String?
    @Option(help: "Comma-separated client counts, one closed-loop step each.") var concurrency = "1,2,4,8,16,32,64"
    @Option(help: "Comma-separated request rates (requests/s): open-loop steps instead of the concurrency sweep.") var rate: String?
    @Option(help: "Seconds per step (after the warm-up).") var duration = 10.0
    @Option(help: "Requests per step instead of a duration (closed loop).") var requests: Int?
    @Option(help: "Seconds of warm-up load before each step (not measured).") var warmup = 2.0
    @Option(help: "Seconds a request may take before it counts as a timeout.") var timeout = 30.0
    @Option(help: "Milliseconds each client pauses between a response and its next request (closed loop).") var thinkTime = 0.0
    @Option(help: "Samples per request for random inputs (and JPEGs per request).") var batch = 1
    @Option(
        help: "Input data: a .npy or JSON file (NAME=FILE for one of several inputs; repeat), or a folder of JPEGs. Default: random data.")
    var input: [String] = []
    @Flag(inversion: .prefixedNo, help: "Send tensors in Triton's binary extension (default) rather than as JSON.") var binary = true
    @Option(help: "What to load: infer, health (GET /v2/health/live), or a path such as /predict to POST --body to.") var endpoint = "infer"
    @Option(help: "The body to POST when --endpoint is a path (sent as application/json).") var body: String?
    @Option(help: "Event-loop threads of the load generator (default: up to 2).") var threads: Int?
    @Option(help: "Most connections the open loop opens when the server falls behind.") var maxConnections = 1024
    @Option(help: "Measure this model's compute-only throughput in-process and print serving efficiency.") var compareCompute: String?
    @Option(help: "Write every number to this JSON file.") var json: String?
    @Option(help: "Draw throughput and latency to this SVG file.") var plot: String?
    @Option(help: "Also plot a run saved earlier with --json (repeat for more).") var plotWith: [String] = []
    @Option(help: "Name of this run in the plot's legend.") var label: String?

    func validate() throws {
        try OptionChecks.time(duration, "--duration")
        try OptionChecks.time(timeout, "--timeout")
        try OptionChecks.time(warmup, "--warmup", zeroAllowed: true)
        try OptionChecks.time(thinkTime, "--think-time", in: .milliseconds, zeroAllowed: true)
        if rate != nil, thinkTime > 0 { throw ValidationError("--think-time applies to the closed loop; --rate sets arrivals itself") }
        do {
            _ = try loadSteps()
        } catch {
            throw ValidationError(error.description)
        }
        if let requests, requests < 1 { throw ValidationError("--requests must be at least 1") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        guard maxConnections >= 1 else { throw ValidationError("--max-connections must be at least 1") }
        if rate != nil, requests != nil { throw ValidationError("--requests applies to the closed loop; with --rate use --duration") }
    }

    func run() throws {
        do {
            let plan = try BenchPlan(self)
            let status = plan.execute()
            if status != 0 { throw ExitCode(status) }
        } catch let error as BenchError {
            FileHandle.standardError.write(Data("forklift bench: \(error.description)\n".utf8))
            throw ExitCode(error.isSetupFailure ? 2 : 1)
        }
    }

    /// Most clients of one closed-loop step: each is a connection, and so a file descriptor.
    static let mostClients = 100_000
    /// Request rates, per second, of the open loop: the mean gap between arrivals becomes
    /// integer nanoseconds.
    static let rates = 0.01...10_000_000.0

    /// The steps that `--rate` or `--concurrency` lists: checked in `validate()`, used by the plan.
    func loadSteps() throws(BenchError) -> [LoadMode] {
        if let rate { return try Self.requestRates(rate).map { .rate($0) } }
        return try Self.clientCounts(concurrency).map { .concurrency($0) }
    }

    /// Client counts from a comma-separated list.
    static func clientCounts(_ text: String) throws(BenchError) -> [Int] {
        let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ (1...mostClients).contains($0 ?? 0) }) else {
            throw BenchError(.badInput, "--concurrency takes whole numbers from 1 to \(mostClients) separated by commas, got '\(text)'")
        }
        return values.compactMap { $0 }
    }

    /// Request rates from a comma-separated list.
    static func requestRates(_ text: String) throws(BenchError) -> [Double] {
        let values = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ rates.contains($0 ?? 0) }) else {
            throw BenchError(.badInput, "--rate takes requests per second from 0.01 to 10,000,000 separated by commas, got '\(text)'")
        }
        return values.compactMap { $0 }
    }
}
