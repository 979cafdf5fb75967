import ForkliftImage
import ForkliftPool

/// What the HTTP layer needs from the worker pool. `WorkerPool` conforms (see `forklift serve`).
public protocol InferenceBackend: Sendable {
    /// True while every model has at least one live worker.
    func serverReady() async -> Bool
    /// True while `model` has at least one live worker.
    func modelReady(_ model: String) async -> Bool
    /// Runs the request and calls `completion` once with its outputs, from any thread.
    func submit(_ request: InferenceRequest, completion: @escaping @Sendable (Result<InferenceResult, PoolError>) -> Void)
}

/// HTTP settings of `forklift serve`.
public struct ServerConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    /// 0 picks a free port; the chosen one is reported through `onListening`.
    public var port: Int = 8080
    /// Largest request body, compressed or decompressed; past it the answer is 413.
    public var maxBodyBytes: Int = 64 << 20
    /// Largest image (declared width × height) accepted; checked from the JPEG header.
    public var maxImagePixels: Int = ImageLimits.defaultMaxPixels
    /// How long in-flight requests may take to finish after SIGTERM or SIGINT.
    public var gracefulTimeout: Duration = .seconds(30)
    /// A failed request (5xx) of the same model and status as one logged less than this long ago
    /// is counted, not logged; zero logs each.
    public var failureLogInterval: Duration = .seconds(1)
    public var settings = ServingSettings(workers: 1, maxQueueDelayMicroseconds: 0)

    public init() {}
}
