import CForkliftSys
import ForkliftEngine
import ForkliftImage
import Foundation

// The contract between the HTTP server and the worker pool. The server validates requests
// against `ModelMetadata` before calling `WorkerPool.infer`, so no bad request reaches a worker.

/// Process-wide memory settings of a serving process (the server, and each worker at its fork).
public enum ServingMemory {
    /// Large buffers (request bodies, frames, batches) reuse malloc's heap instead of being
    /// mapped, faulted in and unmapped per request: see `fl_reuse_large_allocations`.
    public static func reuseLargeAllocations() { fl_reuse_large_allocations() }
}

/// How the pool runs: the `forklift serve` flags.
public struct PoolConfiguration: Sendable {
    /// Worker processes, each with every model (default: cores).
    public var workers: Int = ProcessInfo.processInfo.activeProcessorCount
    /// OpenBLAS threads per worker.
    public var threads: Int = 1
    /// Requests that may wait per model before the server answers 503.
    public var maxQueue: Int = 512
    /// Deadline of one batch; past it the worker is killed and its requests fail with a timeout.
    public var timeout: Duration = .seconds(30)
    /// How long loading the models (zygote start to first worker ready) may take.
    public var loadTimeout: Duration = .seconds(300)
    /// Optional hold-back to let a batch fill; zero means greedy (send as soon as a worker is idle).
    public var maxQueueDelay: Duration = .zero
    /// How long a worker and its connection thread poll for the next request after a batch, at
    /// light load: the rest of the pool idle, batches of one request, and nearly all recent
    /// requests back within this time (zero: never).
    public var busyPoll: Duration = .microseconds(500)
    /// The longest `busyPoll` that `forklift serve` accepts. The batch frame tells the worker its
    /// polling time in 16-bit microseconds, so a worker never polls longer than 65 ms.
    public static let longestBusyPollMicroseconds = 50_000
    /// Batch limit for models whose config.json does not set max_batch_size.
    public var defaultMaxBatchSize: Int = 32
    /// Largest image (declared width × height) a worker decodes; the HTTP layer checks it first.
    public var maxImagePixels: Int = ImageLimits.defaultMaxPixels
    /// The forklift binary, spawned as the zygote (`forklift zygote …`).
    public var executable: String = CommandLine.arguments[0]

    public init() {}
}

/// A model in the repository: `models/<name>/model.onnx` or `models/<name>/<version>/model.onnx`,
/// with an optional `config.json` beside it.
public struct ModelEntry: Sendable, Equatable {
    public var name: String
    public var version: String
    public var path: URL
    public var config: ModelConfig

    public init(name: String, version: String, path: URL, config: ModelConfig) {
        self.name = name
        self.version = version
        self.path = path
        self.config = config
    }
}

/// `config.json` of a model folder.
public struct ModelConfig: Codable, Sendable, Equatable {
    public var maxBatchSize: Int?
    /// Batches of this model that may run at once (Triton's `instance_group` count); nil means
    /// one per worker. A model whose compute is tiny next to a request's overhead serves more
    /// with one: its requests then gather into bigger batches instead of being split between
    /// workers as they arrive.
    public var instanceCount: Int?
    /// A labels file, one label per line, relative to the model's folder.
    public var labels: String?
    /// How a JPEG becomes the model's input; a model with it takes encoded images. Validated
    /// while decoding: a bad field is named.
    public var image: ImagePreprocessing?

    public init(maxBatchSize: Int? = nil, labels: String? = nil, image: ImagePreprocessing? = nil, instanceCount: Int? = nil) {
        self.maxBatchSize = maxBatchSize
        self.instanceCount = instanceCount
        self.labels = labels
        self.image = image
    }

    enum CodingKeys: String, CodingKey {
        case maxBatchSize = "max_batch_size"
        case instanceCount = "instance_count"
        case labels
        case image
    }
}

/// What the zygote learned by loading a model: what the server validates requests against.
public struct ModelMetadata: Sendable, Equatable {
    public var name: String
    public var version: String
    public var inputs: [ValueSpec]
    public var outputs: [ValueSpec]
    /// Largest batch in samples; 0 when the model has no batch dimension (one request at a time).
    public var maxBatchSize: Int
    public var labels: [String]?
    /// The input that takes encoded JPEGs (a BYTES tensor, one image per sample), when the model's
    /// config has an `image` section.
    public var imageInput: String?
    /// Batches that may run at once (config.json's `instance_count`); nil means one per worker.
    public var instanceCount: Int?

    public init(
        name: String, version: String, inputs: [ValueSpec], outputs: [ValueSpec], maxBatchSize: Int, labels: [String]?,
        imageInput: String? = nil, instanceCount: Int? = nil
    ) {
        self.name = name
        self.version = version
        self.inputs = inputs
        self.outputs = outputs
        self.maxBatchSize = maxBatchSize
        self.labels = labels
        self.imageInput = imageInput
        self.instanceCount = instanceCount
    }
}

/// A tensor on the wire: dtype, shape and raw little-endian bytes (count × dtype size).
public struct WireTensor: Sendable, Equatable {
    public var dtype: DType
    public var shape: [Int]
    public var bytes: TensorBytes

    public init(dtype: DType, shape: [Int], data: Data) {
        self.init(dtype: dtype, shape: shape, bytes: TensorBytes(data))
    }

    public init(dtype: DType, shape: [Int], bytes: TensorBytes) {
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    /// The bytes in one `Data`. This copies them when they are in pieces, so the pool's own
    /// paths read `bytes` instead.
    public var data: Data { bytes.joined }
}

/// A tensor's bytes: one `Data`, or the pieces that a request body arrived in. A 600 KB input
/// spans about ten socket reads. Joining them on the event loop, and copying the joined bytes to
/// the worker's shared region on the pool's thread, passed over them twice; with the pieces, the
/// pool's thread copies each one straight into the region, or writes it to the socket as it is.
public struct TensorBytes: Sendable, Equatable {
    public let pieces: [Data]
    public let count: Int

    public init(_ data: Data) {
        pieces = [data]
        count = data.count
    }

    public init(pieces: [Data]) {
        self.pieces = pieces.filter { !$0.isEmpty }
        count = pieces.reduce(0) { $0 + $1.count }
    }

    /// The bytes in one `Data`; a copy only when they are in more than one piece.
    public var joined: Data {
        guard pieces.count > 1 else { return pieces.first ?? Data() }
        var data = Data(capacity: count)
        for piece in pieces { data.append(piece) }
        return data
    }

    /// Copies the bytes to `target`, which must hold `count` bytes.
    public func copy(to target: UnsafeMutableRawPointer) {
        var offset = 0
        for piece in pieces {
            piece.withUnsafeBytes { raw in
                guard let source = raw.baseAddress else { return }
                (target + offset).copyMemory(from: source, byteCount: raw.count)
            }
            offset += piece.count
        }
    }

    /// Equal bytes, however they are split.
    public static func == (lhs: TensorBytes, rhs: TensorBytes) -> Bool {
        lhs.count == rhs.count && lhs.joined == rhs.joined
    }
}

/// One client request: a tensor per model input, in the order of `ModelMetadata.inputs`. For a
/// batchable model, dimension 0 counts this request's samples (usually 1).
public struct InferenceRequest: Sendable {
    public var model: String
    public var inputs: [WireTensor]

    public init(model: String, inputs: [WireTensor]) {
        self.model = model
        self.inputs = inputs
    }
}

/// The outputs for one request, in the order of `ModelMetadata.outputs`, with dimension 0 cut
/// back to the request's own samples.
public struct InferenceResult: Sendable {
    public var outputs: [WireTensor]
    /// Samples in the batch that carried this request.
    public var batchSize: Int
    public var queueSeconds: Double
    public var computeSeconds: Double

    public init(outputs: [WireTensor], batchSize: Int, queueSeconds: Double, computeSeconds: Double) {
        self.outputs = outputs
        self.batchSize = batchSize
        self.queueSeconds = queueSeconds
        self.computeSeconds = computeSeconds
    }
}

/// Why the pool could not answer. The server maps each to an HTTP status.
public enum PoolError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 404
    case unknownModel(String)
    /// 503: loading, or no live worker.
    case modelNotReady(String)
    /// 503 with Retry-After.
    case queueFull(model: String, capacity: Int)
    /// 504: the batch passed its deadline and its worker was killed.
    case timeout(model: String, seconds: Double)
    /// 400: the engine rejected the input (the server's validation should have caught it).
    case badInput(String)
    /// 500: the worker failed twice on this request, or a frame was malformed.
    case workerFailed(String)
    /// 503: the server is shutting down.
    case shuttingDown
    /// Startup failed: a model did not load, or loading passed --load-timeout.
    case loadFailed(String)

    public var description: String {
        switch self {
        case .unknownModel(let name): "unknown model '\(name)'"
        case .modelNotReady(let name): "model '\(name)' is not ready (no live worker)"
        case .queueFull(let model, let capacity): "the queue of model '\(model)' is full (\(capacity) requests waiting); retry later"
        case .timeout(let model, let seconds): "model '\(model)': the batch took longer than the \(seconds) s deadline"
        case .badInput(let why): why
        case .workerFailed(let why): "worker failed: \(why)"
        case .shuttingDown: "the server is shutting down"
        case .loadFailed(let why): "loading models failed: \(why)"
        }
    }
}
