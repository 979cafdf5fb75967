import ForkliftEngine
import Foundation

/// What requests carry: random data shaped by the metadata, files, or a folder of JPEGs.
public enum InputSource: Sendable, Equatable {
    case random
    /// `.npy` or JSON files, by input name (nil: the model's only input).
    case files([(name: String?, path: String)])
    case images(directory: String)

    public static func == (a: InputSource, b: InputSource) -> Bool {
        switch (a, b) {
        case (.random, .random): true
        case (.files(let x), .files(let y)): x.map(\.path) == y.map(\.path) && x.map(\.name) == y.map(\.name)
        case (.images(let x), .images(let y)): x == y
        default: false
        }
    }

    /// Parses `--input` values: one folder, or files as `PATH` / `NAME=PATH`.
    public static func parse(_ values: [String]) throws(BenchError) -> InputSource {
        guard !values.isEmpty else { return .random }
        var isDirectory: ObjCBool = false
        if values.count == 1, FileManager.default.fileExists(atPath: values[0], isDirectory: &isDirectory), isDirectory.boolValue {
            return .images(directory: values[0])
        }
        return .files(
            values.map { value in
                if let equals = value.firstIndex(of: "="), !FileManager.default.fileExists(atPath: value) {
                    return (String(value[..<equals]), String(value[value.index(after: equals)...]))
                }
                return (nil, value)
            })
    }
}

/// Builds the requests of a run from the model's description and the user's choice of inputs.
public enum PayloadFactory {
    /// Distinct random bodies to rotate through, so that no cache sees one body only.
    static let randomVariants = 4

    public static func make(
        model: ModelDescription, target: BenchTarget, source: InputSource, batch: Int, binary: Bool
    ) throws(BenchError) -> [RequestPayload] {
        guard batch >= 1 else { throw BenchError(.badInput, "--batch must be at least 1") }
        if !model.isBatched && batch != 1 {
            throw BenchError(.badInput, "model '\(model.model)' has no batch dimension (max_batch_size 0): use --batch 1")
        }
        if let limit = model.maxBatchSize, limit > 0, batch > limit {
            throw BenchError(.badInput, "--batch \(batch) is above the model's max_batch_size \(limit)")
        }
        switch source {
        case .random:
            var generator = SystemRandomNumberGenerator()
            return try (0..<randomVariants).map { (_) throws(BenchError) in
                let tensors = try model.inputs.map { (input) throws(BenchError) in
                    try V2Tensor.random(
                        name: input.name, datatype: input.datatype, shape: try shape(of: input, model: model, batch: batch),
                        using: &generator)
                }
                return try RequestPayload.infer(target: target, model: model.model, tensors: tensors, samples: batch, binary: binary)
            }
        case .files(let files):
            let tensors = try files.map { (file) throws(BenchError) in try load(file, model: model, batch: batch) }
            let samples = model.isBatched ? tensors.first?.shape.first ?? 1 : 1
            return [try RequestPayload.infer(target: target, model: model.model, tensors: tensors, samples: samples, binary: binary)]
        case .images(let directory):
            return try images(directory, model: model, target: target, batch: batch, binary: binary)
        }
    }

    /// The metadata's shape with the batch dimension set; any other variable dimension is an error.
    static func shape(of input: TensorDescription, model: ModelDescription, batch: Int) throws(BenchError) -> [Int] {
        var shape = input.shape
        // A batched model's config drops the batch dimension, but V2 metadata (Triton's and Forklift's) keeps it.
        if model.isBatched, shape.first == -1 { shape[0] = batch }
        if let position = shape.firstIndex(where: { $0 < 0 }) {
            throw BenchError(
                .badInput,
                "input '\(input.name)' has a variable dimension at position \(position) (\(input.shape)); give data with --input")
        }
        return shape
    }

    static func load(_ file: (name: String?, path: String), model: ModelDescription, batch: Int) throws(BenchError) -> V2Tensor {
        let input: TensorDescription
        if let name = file.name {
            guard let match = model.inputs.first(where: { $0.name == name }) else {
                throw BenchError(
                    .badInput,
                    "\(file.path): model '\(model.model)' has no input '\(name)' (it has \(model.inputs.map(\.name).joined(separator: ", ")))"
                )
            }
            input = match
        } else {
            guard model.inputs.count == 1 else {
                throw BenchError(
                    .badInput,
                    "model '\(model.model)' has \(model.inputs.count) inputs: name each file, e.g. --input \(model.inputs[0].name)=\(file.path)"
                )
            }
            input = model.inputs[0]
        }
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw BenchError(.badInput, "\(file.path): cannot read the file")
        }
        var tensor: Tensor
        do {
            if file.path.lowercased().hasSuffix(".npy") {
                tensor = try NPY.read(data)
            } else {
                let dtype = DType.allCases.first { V2Tensor.datatype(of: $0) == input.datatype } ?? .float32
                tensor = try TensorJSON.parse(data, dtype: dtype)
            }
        } catch {
            throw BenchError(.badInput, "\(file.path): \(error)")
        }
        // One sample without the batch dimension: repeat it --batch times.
        if model.isBatched, tensor.rank == input.shape.count - 1 {
            let one = UnsafeRawBufferPointer(start: tensor.raw, count: tensor.byteCount)
            var bytes: [UInt8] = []
            for _ in 0..<batch { bytes += one }
            return V2Tensor(name: input.name, datatype: V2Tensor.datatype(of: tensor.dtype), shape: [batch] + tensor.shape, bytes: bytes)
        }
        return V2Tensor(name: input.name, tensor: tensor)
    }

    /// Each request carries `batch` consecutive JPEGs as a BYTES input in the binary extension.
    static func images(_ directory: String, model: ModelDescription, target: BenchTarget, batch: Int, binary: Bool) throws(BenchError)
        -> [RequestPayload]
    {
        guard binary else { throw BenchError(.badInput, "JPEG inputs go as BYTES in the binary extension: drop --json") }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw BenchError(.badInput, "\(directory): cannot list the folder")
        }
        let jpegs = names.filter { $0.lowercased().hasSuffix(".jpg") || $0.lowercased().hasSuffix(".jpeg") }.sorted()
        guard !jpegs.isEmpty else { throw BenchError(.badInput, "\(directory): no .jpg or .jpeg files") }
        guard model.inputs.count == 1 else {
            throw BenchError(.badInput, "model '\(model.model)' has \(model.inputs.count) inputs; a folder of JPEGs feeds one")
        }
        let input = model.inputs[0]
        let files = try jpegs.prefix(256).map { (name) throws(BenchError) in
            let path = (directory as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path) else {
                throw BenchError(.badInput, "\(path): cannot read the file")
            }
            return [UInt8](data)
        }
        // A BYTES input keeps the metadata's rank (e.g. [B, 1]); a tensor input gets one JPEG per sample: [B].
        let tail = input.datatype == "BYTES" ? input.shape.dropFirst().map { max($0, 1) } : []
        let requests = max(1, files.count / batch)
        return (0..<requests).map { request in
            let items = (0..<batch).map { files[(request * batch + $0) % files.count] }
            let tensor = V2Tensor.bytesTensor(name: input.name, items: items, shape: [batch] + tail)
            // Binary encoding of a BYTES tensor cannot fail.
            return (try? RequestPayload.infer(target: target, model: model.model, tensors: [tensor], samples: batch, binary: true))
                ?? RequestPayload(method: .POST, path: "/", host: target.hostHeader, contentType: nil, body: nil, samples: batch)
        }
    }
}
