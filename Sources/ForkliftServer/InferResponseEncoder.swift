import ForkliftEngine
import ForkliftImage
import ForkliftPool
import Foundation

/// An encoded infer response: JSON, then the binary outputs in the order they are listed.
public struct EncodedInferResponse: Sendable {
    public var body: [UInt8]
    /// Length of the JSON part when binary outputs follow it (the `Inference-Header-Content-Length`
    /// response header); nil when the body is all JSON.
    public var headerLength: Int?
    /// The worker's queue and compute times, for the `Server-Timing` header.
    var timing: ServerTiming?
}

/// Writes the V2 infer response for the outputs the client asked for.
public enum InferResponseEncoder {
    public static func encode(
        _ result: InferenceResult, outputs requested: [RequestedOutput], model: ModelMetadata, id: String?,
        classification: [ClassScore]? = nil
    ) throws(ServerError) -> EncodedInferResponse {
        var writer = JSONWriter(capacity: 512)
        writer.raw("{")
        writer.key("model_name")
        writer.string(model.name)
        writer.raw(",")
        writer.key("model_version")
        writer.string(model.version)
        if let id {
            writer.raw(",")
            writer.key("id")
            writer.string(id)
        }
        if let classification {
            writer.raw(",")
            writer.key("classification")
            writer.objects(classification) { writer, entry in
                writer.key("label")
                writer.string(entry.label)
                writer.raw(",")
                writer.key("index")
                writer.raw(String(entry.index))
                writer.raw(",")
                writer.key("score")
                writer.float(entry.score)
            }
        }
        writer.raw(",")
        writer.key("outputs")
        var binaryParts: [Data] = []
        try writer.objects(requested) { (writer, output) throws(ServerError) in
            guard output.index < result.outputs.count, output.index < model.outputs.count else {
                throw ServerError(
                    .internalServerError, "the worker returned \(result.outputs.count) outputs, the model has \(model.outputs.count)")
            }
            let tensor = result.outputs[output.index]
            let name = model.outputs[output.index].name
            let ranked = output.classes > 0 ? try ClassificationOutput.rank(tensor, classes: output.classes, labels: model.labels) : nil
            guard ranked != nil || Shape.elementCount(tensor.shape).map({ $0 * tensor.dtype.byteSize }) == tensor.data.count else {
                throw ServerError(
                    .internalServerError,
                    "output '\(name)': shape \(Shape.describe(tensor.shape)) does not match its \(tensor.data.count) bytes")
            }
            writer.key("name")
            writer.string(name)
            writer.raw(",")
            writer.key("datatype")
            writer.string(ranked == nil ? V2DataType.name(tensor.dtype) : "BYTES")
            writer.raw(",")
            writer.key("shape")
            writer.integers(ranked?.shape ?? tensor.shape)
            writer.raw(",")
            if output.binary {
                let data = ranked.map { BytesTensor.serialize($0.entries.map { Array($0.utf8) }) } ?? tensor.data
                writer.key("parameters")
                writer.raw("{")
                writer.key("binary_data_size")
                writer.raw(String(data.count))
                writer.raw("}")
                binaryParts.append(data)
            } else if let ranked {
                writer.key("data")
                writer.strings(ranked.entries)
            } else {
                writer.key("data")
                TensorDataEncoder.write(tensor.data, count: Shape.elementCount(tensor.shape) ?? 0, dtype: tensor.dtype, into: &writer)
            }
        }
        writer.raw("}")
        guard !binaryParts.isEmpty else { return EncodedInferResponse(body: writer.bytes, headerLength: nil) }
        let headerLength = writer.bytes.count
        // Appended in place: a copy of `writer.bytes` would share its storage and copy it on growth.
        writer.bytes.reserveCapacity(headerLength + binaryParts.reduce(0) { $0 + $1.count })
        // Through the raw bytes: appending a `Data` as a sequence copies byte by byte.
        for part in binaryParts { part.withUnsafeBytes { writer.bytes.append(contentsOf: $0) } }
        return EncodedInferResponse(body: writer.bytes, headerLength: headerLength)
    }
}
