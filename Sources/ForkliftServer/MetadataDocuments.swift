import ForkliftEngine
import ForkliftPool

/// The models being served, looked up by name and optional version.
public struct ModelCatalog: Sendable {
    public let models: [ModelMetadata]
    /// Each name's newest version, resolved once: the lookup of every infer request.
    private let newest: [String: ModelMetadata]

    public init(_ models: [ModelMetadata]) {
        self.models = models
        var newest: [String: ModelMetadata] = [:]
        for model in models where newest[model.name].map({ Self.older($0.version, model.version) }) ?? true {
            newest[model.name] = model
        }
        self.newest = newest
    }

    /// The model `name` at `version`, or its newest version when none is given; 404 otherwise.
    public func lookup(_ name: String, version: String? = nil) throws(ServerError) -> ModelMetadata {
        guard version == nil, let model = newest[name] else { return try lookup(name, exactVersion: version) }
        return model
    }

    private func lookup(_ name: String, exactVersion version: String?) throws(ServerError) -> ModelMetadata {
        let candidates = models.filter { $0.name == name }
        guard !candidates.isEmpty else { throw ServerError(.notFound, "unknown model '\(name)'") }
        guard let version else { return candidates.max { Self.older($0.version, $1.version) } ?? candidates[0] }
        guard let match = candidates.first(where: { $0.version == version }) else {
            throw ServerError(
                .notFound, "model '\(name)' has no version '\(version)' (it has \(versions(of: name).joined(separator: ", ")))")
        }
        return match
    }

    public func versions(of name: String) -> [String] {
        models.filter { $0.name == name }.map(\.version).sorted { Self.older($0, $1) }
    }

    /// Numeric versions compare as numbers ("10" is newer than "9"), others as text.
    static func older(_ a: String, _ b: String) -> Bool {
        if let x = Int(a), let y = Int(b) { return x < y }
        return a < b
    }
}

/// Settings the config document reports besides what the model itself says.
public struct ServingSettings: Sendable {
    public var workers: Int
    public var maxQueueDelayMicroseconds: Int

    public init(workers: Int, maxQueueDelayMicroseconds: Int) {
        self.workers = workers
        self.maxQueueDelayMicroseconds = maxQueueDelayMicroseconds
    }
}

/// The JSON documents of the metadata endpoints.
public enum MetadataDocuments {
    public static let serverName = "forklift"
    public static let serverVersion = "0.1.0"
    /// What Triton's tools look for; the engine itself is Forklift's (see `backend` in the config).
    public static let platform = "onnxruntime_onnx"
    public static let extensions = ["binary_tensor_data", "model_configuration"]

    /// `GET /v2`
    public static func server() -> [UInt8] {
        var writer = JSONWriter()
        writer.raw("{")
        writer.key("name")
        writer.string(serverName)
        writer.raw(",")
        writer.key("version")
        writer.string(serverVersion)
        writer.raw(",")
        writer.key("extensions")
        writer.strings(extensions)
        writer.raw("}")
        return writer.bytes
    }

    /// `GET /v2/models/{m}`: shapes with -1 for symbolic dimensions, the batch dimension included.
    public static func model(_ model: ModelMetadata, versions: [String]) -> [UInt8] {
        var writer = JSONWriter()
        writer.raw("{")
        writer.key("name")
        writer.string(model.name)
        writer.raw(",")
        writer.key("versions")
        writer.strings(versions)
        writer.raw(",")
        writer.key("platform")
        writer.string(platform)
        for (key, specs) in [("inputs", model.inputs), ("outputs", model.outputs)] {
            tensorList(&writer, key: key, specs: specs, typeKey: "datatype", shapeKey: "shape", dropBatch: false) {
                V2DataType.name($0)
            }
        }
        writer.raw("}")
        return writer.bytes
    }

    /// `,"key":[{"name":…,"<typeKey>":…,"<shapeKey>":[…]},…]`: the tensor lists of metadata and config.
    private static func tensorList(
        _ writer: inout JSONWriter, key: String, specs: [ValueSpec], typeKey: String, shapeKey: String, dropBatch: Bool,
        typeName: (DType) -> String
    ) {
        writer.raw(",")
        writer.key(key)
        writer.objects(specs) { writer, spec in
            writer.key("name")
            writer.string(spec.name)
            writer.raw(",")
            writer.key(typeKey)
            writer.string(typeName(spec.dtype))
            writer.raw(",")
            writer.key(shapeKey)
            writer.integers(dims(spec, dropBatch: dropBatch))
        }
    }

    /// `GET /v2/models/{m}/config`: Triton's model configuration, dims without the batch dimension.
    public static func config(_ model: ModelMetadata, settings: ServingSettings) -> [UInt8] {
        let batching = model.maxBatchSize > 0
        var writer = JSONWriter()
        writer.raw("{")
        writer.key("name")
        writer.string(model.name)
        writer.raw(",")
        writer.key("platform")
        writer.string(platform)
        writer.raw(",")
        writer.key("backend")
        writer.string(serverName)
        writer.raw(",")
        writer.key("max_batch_size")
        writer.raw(String(model.maxBatchSize))
        for (key, specs) in [("input", model.inputs), ("output", model.outputs)] {
            tensorList(&writer, key: key, specs: specs, typeKey: "data_type", shapeKey: "dims", dropBatch: batching) {
                V2DataType.configName($0)
            }
        }
        if batching {
            writer.raw(",")
            writer.key("dynamic_batching")
            writer.raw("{")
            writer.key("max_queue_delay_microseconds")
            writer.raw(String(settings.maxQueueDelayMicroseconds))
            writer.raw("}")
        }
        writer.raw(",")
        writer.key("instance_group")
        writer.raw("[{")
        writer.key("count")
        writer.raw(String(min(model.instanceCount ?? settings.workers, settings.workers)))
        writer.raw(",")
        writer.key("kind")
        writer.string("KIND_CPU")
        writer.raw("}]")
        if let labels = model.labels, !labels.isEmpty {
            writer.raw(",")
            writer.key("parameters")
            writer.raw("{")
            writer.key("labels")
            writer.raw("{")
            writer.key("string_value")
            writer.string(labels.joined(separator: "\n"))
            writer.raw("}}")
        }
        writer.raw("}")
        return writer.bytes
    }

    /// Dimensions as the protocol writes them: -1 for symbolic ones, nothing known for an unknown rank.
    static func dims(_ spec: ValueSpec, dropBatch: Bool) -> [Int] {
        guard let shape = spec.shape else { return [-1] }
        let values = shape.map { $0.value ?? -1 }
        return dropBatch ? Array(values.dropFirst()) : values
    }
}
