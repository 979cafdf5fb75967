import ArgumentParser
import ForkliftEngine
import ForkliftPool
import ForkliftServer
import Foundation
@preconcurrency import Glibc
import Logging

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve models over HTTP with the V2 / Open Inference Protocol (Triton's, KServe's).",
        discussion: "Workers are forked from a zygote process that loaded the models once, so they share the weights.")

    @Argument(help: "A model (.onnx) or a model repository folder (<name>/model.onnx, <name>/<version>/model.onnx).")
    var path: String = "models"

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on; 0 picks a free one (printed at start).") var port = 8080
    @Option(help: "Worker processes (default: the number of cores).") var workers: Int?
    @Option(help: "Compute threads per worker (the engine's kernels and OpenBLAS).") var threads = 1
    @Option(help: "Requests that may wait per model; past it the answer is 503 with Retry-After.") var maxQueue = 512
    @Option(help: "Seconds a batch may take before its worker is killed and its requests get 504.") var timeout = 30.0
    @Option(help: "Seconds loading the models may take.") var loadTimeout = 300.0
    @Option(help: "Largest batch for models whose config.json sets no max_batch_size.") var maxBatchSize = 32
    @Option(help: "Milliseconds to hold a batch back so that it fills (0: send as soon as a worker is idle).") var maxQueueDelay = 0.0
    @Option(
        help:
            "Microseconds that a worker and its thread in the server keep polling for the next request before they sleep, when requests have been coming back within that time and the pool is otherwise idle (0: sleep at once). Saves two wake-ups per request at low load, for CPU time spent polling."
    )
    var busyPoll = 500
    @Option(help: "Largest request body in bytes (also after decompression); larger ones get 413.") var maxBody = 64 << 20
    @Option(help: "Largest image accepted, in pixels (width × height as its JPEG header declares).") var maxImagePixels = 40_000_000
    @Option(help: "Seconds to finish queued and in-flight requests after SIGTERM or SIGINT.") var gracefulTimeout = 30.0
    @Option(help: "Log level: trace, debug (access logs), info, notice, warning, error, critical.") var logLevel = "info"
    @Option(help: "Seconds between warnings about failed requests (5xx) of one model and status; the rest are counted (0: log each).")
    var failureLogInterval = 1.0

    func validate() throws {
        guard port >= 0, port <= 65535 else { throw ValidationError("--port must be in 0...65535") }
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard maxQueue >= 1 else { throw ValidationError("--max-queue must be at least 1") }
        guard maxBatchSize >= 1 else { throw ValidationError("--max-batch-size must be at least 1") }
        let longestBusyPoll = PoolConfiguration.longestBusyPollMicroseconds
        guard busyPoll >= 0, busyPoll <= longestBusyPoll else {
            throw ValidationError("--busy-poll must be in 0...\(longestBusyPoll) microseconds")
        }
        guard maxBody >= 1 else { throw ValidationError("--max-body must be at least 1") }
        guard maxImagePixels >= 1 else { throw ValidationError("--max-image-pixels must be at least 1") }
        for (name, value) in [("--timeout", timeout), ("--load-timeout", loadTimeout), ("--graceful-timeout", gracefulTimeout)] {
            try OptionChecks.time(value, name)
        }
        try OptionChecks.time(maxQueueDelay, "--max-queue-delay", in: .milliseconds, zeroAllowed: true)
        try OptionChecks.time(failureLogInterval, "--failure-log-interval", zeroAllowed: true)
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
    }

    func run() throws {
        let launch = try ServeLaunch(self)
        // The root command is synchronous (the zygote subcommand must never start the concurrency
        // runtime's threads), so serving runs in a task and ends the process itself.
        Task {
            let status = await launch.serve()
            fflush(nil)
            Glibc.exit(status)
        }
        dispatchMain()
    }
}

/// Everything `serve` needs, resolved from the flags: Sendable, so it can move into the task.
struct ServeLaunch: Sendable {
    let entries: [ModelEntry]
    let pool: PoolConfiguration
    let server: ServerConfiguration
    let logLevel: Logger.Level

    init(_ options: Serve) throws {
        do {
            entries = try Self.scan(URL(fileURLWithPath: options.path))
        } catch {
            throw CLIError("forklift serve: \(error)")
        }
        var pool = PoolConfiguration()
        if let workers = options.workers { pool.workers = workers }
        pool.threads = options.threads
        pool.maxQueue = options.maxQueue
        pool.timeout = .milliseconds(Int64(options.timeout * 1000))
        pool.loadTimeout = .milliseconds(Int64(options.loadTimeout * 1000))
        pool.maxQueueDelay = .microseconds(Int64(options.maxQueueDelay * 1000))
        pool.busyPoll = .microseconds(options.busyPoll)
        pool.defaultMaxBatchSize = options.maxBatchSize
        pool.maxImagePixels = options.maxImagePixels
        pool.executable = Self.executablePath()
        self.pool = pool
        var server = ServerConfiguration()
        server.host = options.host
        server.port = options.port
        server.maxBodyBytes = options.maxBody
        server.maxImagePixels = options.maxImagePixels
        server.gracefulTimeout = .milliseconds(Int64(options.gracefulTimeout * 1000))
        server.failureLogInterval = .milliseconds(Int64(options.failureLogInterval * 1000))
        server.settings = ServingSettings(workers: pool.workers, maxQueueDelayMicroseconds: Int(options.maxQueueDelay * 1000))
        self.server = server
        logLevel = Logger.Level(rawValue: options.logLevel) ?? .info
    }

    /// A repository, a model file, or one model's folder (`models/digits`, holding `model.onnx`):
    /// that one is served under its folder's name, with its config.json.
    static func scan(_ url: URL) throws(RepositoryError) -> [ModelEntry] {
        let name = url.standardizedFileURL.lastPathComponent
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("model.onnx").path) {
            return try ModelRepository.scan(url.standardizedFileURL.deletingLastPathComponent()).filter { $0.name == name }
        }
        return try ModelRepository.scan(url)
    }

    /// This binary, so the zygote is the same build whatever the working directory.
    static func executablePath() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// Runs until SIGTERM/SIGINT; returns the exit status.
    func serve() async -> Int32 {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "forklift.serve")
        logger.logLevel = level
        let registry = MetricsBootstrap.prometheus()

        // Fail before loading models when the port is plainly taken (the real bind below still decides).
        if server.port != 0, let reason = PortProbe.busy(host: server.host, port: server.port) {
            Self.say("error: cannot listen on \(server.host):\(server.port): \(reason)", error: true)
            return 1
        }
        ServingMemory.reuseLargeAllocations()
        let workerPool = WorkerPool(models: entries, configuration: pool, logger: logger)
        do {
            try await workerPool.start()
        } catch {
            Self.say("error: \(error)", error: true)
            await workerPool.shutdown(grace: .seconds(1))
            return 1
        }
        let models = workerPool.metadata
        for model in models { Self.say(Self.describe(model)) }
        Self.say("workers: \(pool.workers) × \(pool.threads) compute thread\(pool.threads == 1 ? "" : "s"), forked from one zygote")

        let metrics = ServerMetrics(models: models.map(\.name), registry: registry)
        let http = HTTPServer(
            backend: PoolBackend(pool: workerPool), models: models, configuration: server, metrics: metrics, logger: logger)
        let host = server.host
        let secondSignal = SecondSignalStop(pool: workerPool, logger: logger)
        var status: Int32 = 0
        do {
            try await http.run { port in
                secondSignal.arm()
                Self.say("listening on http://\(host.contains(":") ? "[\(host)]" : host):\(port)")
            }
            logger.info("shutting down: finishing queued requests, stopping the workers")
        } catch {
            Self.say("error: \(error)", error: true)
            status = 1
        }
        await workerPool.shutdown(grace: server.gracefulTimeout)
        Self.say("stopped")
        return status
    }

    static func describe(_ model: ModelMetadata) -> String {
        func specs(_ values: [ValueSpec]) -> String { values.map(\.description).joined(separator: ", ") }
        let batching = model.maxBatchSize > 0 ? "max_batch_size \(model.maxBatchSize)" : "no batching"
        return "model \(model.name) (version \(model.version)): \(specs(model.inputs)) -> \(specs(model.outputs)); \(batching)"
    }

    /// One line, written at once (unbuffered): tests read the port from a pipe.
    static func say(_ line: String, error: Bool = false) {
        let handle = error ? FileHandle.standardError : FileHandle.standardOutput
        handle.write(Data("forklift serve: \(line)\n".utf8))
    }
}

/// The pool as the HTTP layer sees it.
struct PoolBackend: InferenceBackend {
    let pool: WorkerPool

    func serverReady() async -> Bool { pool.isReady }
    func modelReady(_ model: String) async -> Bool { pool.isReady(model: model) }
    func submit(_ request: InferenceRequest, completion: @escaping @Sendable (Result<InferenceResult, PoolError>) -> Void) {
        pool.submit(request, completion: completion)
    }
}

/// Checks that an IPv4 address and port can be bound, before minutes of model loading.
enum PortProbe {
    /// Why the port cannot be bound, or nil when it can (or the host is not a numeric IPv4 address).
    static func busy(host: String, port: Int) -> String? {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &address.sin_addr) == 1 else { return nil }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        // As the server will: a port held only by TIME_WAIT connections is free.
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound != 0 else { return nil }
        return errno == EADDRINUSE ? "address already in use" : String(cString: strerror(errno))
    }
}
