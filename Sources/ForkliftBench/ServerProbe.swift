import Foundation

/// A tensor as V2 metadata describes it: -1 marks a variable dimension.
public struct TensorDescription: Sendable, Equatable {
    public let name: String
    public let datatype: String
    public let shape: [Int]
}

/// What the benchmark learned about the server and the model before sending load.
public struct ModelDescription: Sendable {
    public let serverName: String
    public let serverVersion: String
    public let model: String
    public let inputs: [TensorDescription]
    public let outputs: [TensorDescription]
    /// From the Triton-style config: 0 for a model without a batch dimension; nil when the server has no config endpoint.
    public let maxBatchSize: Int?
    /// Instances serving the model (`instance_group[].count`), when the config says.
    public let instances: Int?

    public var isForklift: Bool { serverName == "forklift" }

    /// Whether requests carry a leading batch dimension: the config says so, or (without one) the
    /// metadata's first dimension is variable in every input.
    public var isBatched: Bool {
        if let maxBatchSize { return maxBatchSize > 0 }
        return !inputs.isEmpty && inputs.allSatisfy { $0.shape.first == -1 }
    }
}

/// Reads server metadata, model metadata and model config, turning each way these can go wrong
/// into one clear error.
public enum ServerProbe {
    public static func describe(model: String, fetch: HTTPFetch) throws(BenchError) -> ModelDescription {
        let root = try fetch.get("/v2")
        guard root.status == 200, let server = jsonObject(root.body) else {
            throw BenchError(
                .badURL,
                "\(fetch.target.description) does not speak the V2 inference protocol: GET \(fetch.target.path("/v2")) answered \(root.status)"
                    + snippet(root.body))
        }
        let escaped = model.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? model
        let metadata = try fetch.get("/v2/models/\(escaped)")
        guard metadata.status == 200 else {
            let kind: BenchError.Kind = metadata.status == 404 || metadata.status == 400 ? .unknownModel : .failed
            throw BenchError(
                kind, "the server has no model '\(model)': GET /v2/models/\(escaped) answered \(metadata.status)\(snippet(metadata.body))")
        }
        guard let document = jsonObject(metadata.body) else {
            throw BenchError(.failed, "the metadata of model '\(model)' is not a JSON object\(snippet(metadata.body))")
        }
        let inputs = try tensors(document["inputs"], what: "inputs", model: model)
        let outputs = (try? tensors(document["outputs"], what: "outputs", model: model)) ?? []
        guard !inputs.isEmpty else { throw BenchError(.failed, "model '\(model)' declares no inputs") }

        var maxBatchSize: Int?
        var instances: Int?
        // Triton and Forklift have a config endpoint; MLServer does not, which is fine.
        if let config = try? fetch.get("/v2/models/\(escaped)/config"), config.status == 200, let object = jsonObject(config.body) {
            maxBatchSize = (object["max_batch_size"] as? NSNumber)?.intValue
            if let groups = object["instance_group"] as? [[String: Any]] {
                let counts = groups.compactMap { ($0["count"] as? NSNumber)?.intValue }
                if !counts.isEmpty { instances = counts.reduce(0, +) }
            }
        }
        return ModelDescription(
            serverName: server["name"] as? String ?? "unknown", serverVersion: server["version"] as? String ?? "",
            model: model, inputs: inputs, outputs: outputs, maxBatchSize: maxBatchSize, instances: instances)
    }

    static func jsonObject(_ bytes: [UInt8]) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
    }

    /// ": <the server's error text>" for messages, cut short.
    static func snippet(_ body: [UInt8]) -> String {
        if let object = jsonObject(body), let error = object["error"] as? String { return ": \(error)" }
        let text = String(decoding: body.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "" : ": \(text)"
    }

    private static func tensors(_ value: Any?, what: String, model: String) throws(BenchError) -> [TensorDescription] {
        guard let list = value as? [[String: Any]] else {
            throw BenchError(.failed, "the metadata of model '\(model)' has no '\(what)' list")
        }
        var result: [TensorDescription] = []
        for (index, item) in list.enumerated() {
            guard let name = item["name"] as? String, let datatype = item["datatype"] as? String,
                let shape = (item["shape"] as? [NSNumber])?.map(\.intValue)
            else {
                throw BenchError(.failed, "the metadata of model '\(model)': \(what)[\(index)] lacks name, datatype or shape")
            }
            result.append(TensorDescription(name: name, datatype: datatype, shape: shape))
        }
        return result
    }
}
