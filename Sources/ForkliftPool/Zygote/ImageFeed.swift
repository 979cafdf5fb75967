import ForkliftEngine
import ForkliftImage
import Foundation

/// A model input that is fed from encoded JPEGs through the model's `image` config. Checked in the
/// zygote at load, so a config that does not fit its model fails there, naming both sides. Each
/// forked worker gets its own copy of the pipeline (and allocates its scratch buffers on first use).
struct ImageFeed {
    let inputIndex: Int
    let inputName: String
    let pipeline: ImagePipeline

    struct Mismatch: Error, CustomStringConvertible {
        let description: String
    }

    init(model: Model, preprocessing: ImagePreprocessing, limits: ImageLimits) throws(Mismatch) {
        let index: Int
        if let name = preprocessing.input {
            guard let found = model.inputs.firstIndex(where: { $0.name == name }) else {
                throw Mismatch(
                    description: "config.json image.input '\(name)' is not an input of the model (it has \(model.inputs.map(\.name)))")
            }
            index = found
        } else {
            guard model.inputs.count == 1 else {
                throw Mismatch(description: "config.json image.input must name one of the model's \(model.inputs.count) inputs")
            }
            index = 0
        }
        let spec = model.inputs[index]
        guard spec.dtype == .float32 else {
            throw Mismatch(description: "config.json image: input '\(spec.name)' is \(spec.dtype), an image feeds a float32 input")
        }
        let pipeline: ImagePipeline
        do {
            pipeline = try ImagePipeline(preprocessing: preprocessing, limits: limits)
        } catch {
            throw Mismatch(description: "config.json image: \(error)")
        }
        let sample = preprocessing.sampleShape
        if let dims = spec.shape {
            let fits =
                dims.count == sample.count + 1
                && zip(dims.dropFirst(), sample).allSatisfy { dim, size in
                    if case .fixed(let fixed) = dim { return fixed == size }
                    return true
                }
            guard fits else {
                throw Mismatch(
                    description:
                        "config.json image makes samples of shape \(Shape.describe(sample)), input '\(spec.name)' is [\(dims.map(\.description).joined(separator: ", "))]"
                )
            }
        }
        inputIndex = index
        inputName = spec.name
        self.pipeline = pipeline
    }

    /// What decoding a batch's images gave: the input tensor of the requests whose images all
    /// decoded, their sample counts, and why the others failed.
    struct DecodedBatch {
        var tensor: Tensor
        var survivors: [Int] = []
        var samples: [Int] = []
        var failures: [RequestFailure] = []
    }

    /// Decodes every request's JPEGs (a BYTES item each) straight into one batch tensor. A request
    /// with an image that does not decode fails alone; the next request's samples take its place.
    func decode(items: [WireTensor]) -> DecodedBatch {
        var failures: [RequestFailure] = []
        var parsed: [(request: Int, jpegs: [Data])] = []
        for (request, item) in items.enumerated() {
            do {
                parsed.append((request, try BytesTensor.elements(of: item.data)))
            } catch {
                failures.append(RequestFailure(request: UInt32(request), message: "input '\(inputName)': \(error)"))
            }
        }
        let sampleCount = pipeline.sampleCount
        let total = parsed.reduce(0) { $0 + $1.jpegs.count }
        let tensor = Tensor(dtype: .float32, shape: [total] + pipeline.sampleShape)
        let base = tensor.pointer(as: Float.self)
        var batch = DecodedBatch(tensor: tensor)
        var written = 0
        for (request, jpegs) in parsed {
            var failure: String?
            for (position, jpeg) in jpegs.enumerated() {
                let slot = UnsafeMutableBufferPointer(start: base + (written + position) * sampleCount, count: sampleCount)
                let outcome: Result<Void, ImageError> = jpeg.withUnsafeBytes { bytes in
                    Result { () throws(ImageError) in try pipeline.write(jpeg: bytes, into: slot) }
                }
                if case .failure(let error) = outcome {
                    failure = jpegs.count == 1 ? "input '\(inputName)': \(error)" : "input '\(inputName)', image \(position): \(error)"
                    break
                }
            }
            if let failure {
                failures.append(RequestFailure(request: UInt32(request), message: failure))
                continue
            }
            batch.survivors.append(request)
            batch.samples.append(jpegs.count)
            written += jpegs.count
        }
        batch.failures = failures.sorted { $0.request < $1.request }
        if written < total {
            let bytes = UnsafeRawBufferPointer(start: base, count: written * sampleCount * MemoryLayout<Float>.stride)
            batch.tensor = Tensor(dtype: .float32, shape: [written] + pipeline.sampleShape, bytes: bytes)
        }
        return batch
    }
}

/// A model as a worker serves it: the engine's model, and its image feed if it has one.
struct ServedModel {
    let model: Model
    let image: ImageFeed?
}
