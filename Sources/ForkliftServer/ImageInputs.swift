import ForkliftEngine
import ForkliftImage
import ForkliftPool
import Foundation

/// Encoded JPEGs on their way to a model's image input. The HTTP layer checks sizes and headers
/// only; decoding happens in the workers (DESIGN.md). On the wire an image input is a BYTES list
/// (4-byte length, then the JPEG) in a uint8 item, one element per sample.
enum ImageInputs {
    /// A V2 input of datatype BYTES: Triton's binary extension carries the JPEGs.
    static func decodeBytesInput(
        _ item: JSON, name: String, model: ModelMetadata, binary: inout BinaryReader, limits: ImageLimits
    ) throws(ServerError) -> WireTensor {
        guard name == model.imageInput else {
            throw .badRequest(
                "input '\(name)': datatype BYTES is only accepted for an image input, and model '\(model.name)' has "
                    + (model.imageInput.map { "'\($0)' as its image input" } ?? "none (its config.json has no 'image' section)"))
        }
        let shape = try InferRequestDecoder.decodeShape(item["shape"], input: name)
        guard let count = shape.first, shape.count == 1 || (shape.count == 2 && shape[1] == 1) else {
            throw .badRequest("input '\(name)': a BYTES image input has shape [images] or [images, 1], not \(Shape.describe(shape))")
        }
        if model.maxBatchSize > 0, count > model.maxBatchSize {
            throw .badRequest("input '\(name)': \(count) images exceed the model's max_batch_size \(model.maxBatchSize)")
        }
        let parameters = try InferRequestDecoder.objectField(item, "parameters", in: "input '\(name)'")
        guard let size = try InferRequestDecoder.intField(parameters, "binary_data_size", in: "input '\(name)' parameters"),
            item["data"] == nil
        else {
            throw .badRequest(
                "input '\(name)': send the JPEG bytes with Triton's binary extension (binary_data_size), or POST one JPEG with Content-Type: image/jpeg"
            )
        }
        guard binary.enabled else {
            throw .badRequest("input '\(name)' has binary_data_size but the request has no Inference-Header-Content-Length header")
        }
        guard let bytes = binary.take(size) else {
            throw .badRequest(
                "input '\(name)': binary_data_size is \(size) bytes but only \(binary.remaining) bytes of binary data are left")
        }
        let jpegs: [Data]
        do {
            jpegs = try BytesTensor.elements(of: bytes)
        } catch {
            throw .badRequest("input '\(name)': \(error)")
        }
        guard jpegs.count == count else {
            throw .badRequest("input '\(name)': shape \(Shape.describe(shape)) says \(count) images, the BYTES data holds \(jpegs.count)")
        }
        for (position, jpeg) in jpegs.enumerated() {
            try check(jpeg, limits: limits, place: count == 1 ? "input '\(name)'" : "input '\(name)', image \(position)")
        }
        return WireTensor(dtype: .uint8, shape: [bytes.count], data: bytes)
    }

    /// A body of `Content-Type: image/jpeg`: one image for the model's image input.
    static func request(jpeg: [UInt8], model: ModelMetadata, limits: ImageLimits) throws(ServerError) -> InferenceRequest {
        guard model.imageInput != nil else {
            throw ServerError(
                .unsupportedMediaType,
                "model '\(model.name)' takes no images (its config.json has no 'image' section): send V2 JSON or binary tensors")
        }
        guard model.inputs.count == 1 else {
            throw .badRequest("model '\(model.name)' has \(model.inputs.count) inputs: send the image as a BYTES input next to the others")
        }
        try check(jpeg, limits: limits, place: "the image")
        let item = BytesTensor.serialize([jpeg])
        return InferenceRequest(model: model.name, inputs: [WireTensor(dtype: .uint8, shape: [item.count], data: item)])
    }

    /// The top `k` classes of the first sample, for a model with labels: from the first output with
    /// one score per label (softmax applied unless the output already is a distribution).
    static func classification(_ result: InferenceResult, model: ModelMetadata, k: Int) -> [ClassScore]? {
        guard let labels = model.labels, !labels.isEmpty else { return nil }
        for output in result.outputs where output.dtype == .float32 && output.shape.last == labels.count {
            let row = output.data.withUnsafeBytes { Array($0.bindMemory(to: Float.self).prefix(labels.count)) }
            return Classification.topK(row, k: k, labels: labels)
        }
        return nil
    }

    private static func check(_ jpeg: some ContiguousBytes, limits: ImageLimits, place: String) throws(ServerError) {
        let outcome: Result<JPEGHeader, ImageError> = jpeg.withUnsafeBytes { bytes in
            Result { () throws(ImageError) in try limits.check(jpeg: bytes) }
        }
        if case .failure(let error) = outcome {
            if case .tooManyBytes = error { throw ServerError(.contentTooLarge, "\(place): \(error)") }
            throw .badRequest("\(place): \(error)")
        }
    }
}
