import ForkliftEngine
import ForkliftImage
import ForkliftPool
import Foundation

/// An output the client asked for, and whether it wants it as raw bytes after the JSON.
public struct RequestedOutput: Sendable, Equatable {
    /// Index into `ModelMetadata.outputs`.
    public var index: Int
    public var binary: Bool
    /// Triton's classification extension: when above 0, the output is answered as its top
    /// `classes` entries per sample ("value:index:label" strings) instead of the raw tensor.
    public var classes: Int

    public init(index: Int, binary: Bool, classes: Int = 0) {
        self.index = index
        self.binary = binary
        self.classes = classes
    }
}

/// A checked infer request: tensors in the model's input order, ready for the pool.
public struct DecodedInferRequest: Sendable {
    public var request: InferenceRequest
    /// The client's `id`, echoed in the response.
    public var id: String?
    public var outputs: [RequestedOutput]
}

/// Turns a V2 infer body (JSON, optionally followed by Triton binary tensor data) into an
/// `InferenceRequest`, checking everything a worker would trip over: names, datatypes, shapes,
/// batch size and element counts. Sizes that the client declares are checked against the bytes
/// actually received before anything is allocated from them.
public enum InferRequestDecoder {
    /// - Parameters:
    ///   - body: the whole (decompressed) request body.
    ///   - headerLength: the `Inference-Header-Content-Length` value: the JSON is `body[..<headerLength]`
    ///     and binary tensor data follows it. Nil when the whole body is JSON.
    ///   - imageLimits: what a JPEG sent to an image input may declare in its header.
    public static func decode(
        body: some RequestBytes, headerLength: Int?, model: ModelMetadata, imageLimits: ImageLimits = ImageLimits()
    ) throws(ServerError) -> DecodedInferRequest {
        let jsonEnd: Int
        if let headerLength {
            guard headerLength > 0, headerLength <= body.count else {
                throw .badRequest("Inference-Header-Content-Length is \(headerLength) but the body has \(body.count) bytes")
            }
            jsonEnd = headerLength
        } else {
            jsonEnd = body.count
        }
        let root: JSON
        do {
            root = try body.withBytes(in: 0..<jsonEnd) { (bytes) throws(JSONParseError) in try JSONParser.parse(bytes) }
        } catch {
            throw .badRequest("the request is not valid JSON: \(error)")
        }
        guard case .object = root else { throw .badRequest("the request must be a JSON object, found \(root.kind)") }

        let id: String?
        switch root["id"] {
        case nil, .null?: id = nil
        case .string(let text)?: id = text
        case let other?: throw .badRequest("'id' must be a string, found \(other.kind)")
        }
        let parameters = try objectField(root, "parameters", in: "the request")
        if let classification = parameters?["classification"], classification != .null {
            throw ServerError(.notImplemented, "the classification extension is not supported")
        }
        let binaryOutput = try boolField(parameters, "binary_data_output", in: "the request's parameters") ?? false

        var reader = BinaryReader(body: body, start: jsonEnd, enabled: headerLength != nil)
        let inputs = try decodeInputs(root, model: model, binary: &reader, imageLimits: imageLimits)
        guard reader.offset == body.count else {
            throw .badRequest(
                "\(body.count - reader.offset) bytes of binary data follow the inputs that no input's binary_data_size accounts for")
        }
        let outputs = try decodeOutputs(root, model: model, binaryDefault: binaryOutput)
        return DecodedInferRequest(request: InferenceRequest(model: model.name, inputs: inputs), id: id, outputs: outputs)
    }

    private static func decodeInputs(
        _ root: JSON, model: ModelMetadata, binary: inout BinaryReader, imageLimits: ImageLimits
    ) throws(ServerError) -> [WireTensor] {
        guard let field = root["inputs"] else { throw .badRequest("the request has no 'inputs'") }
        guard case .array(let items) = field else { throw .badRequest("'inputs' must be an array, found \(field.kind)") }
        var tensors = [WireTensor?](repeating: nil, count: model.inputs.count)
        for (position, item) in items.enumerated() {
            guard case .object = item else { throw .badRequest("inputs[\(position)] must be an object, found \(item.kind)") }
            guard case .string(let name)? = item["name"] else { throw .badRequest("inputs[\(position)] has no string 'name'") }
            guard let index = model.inputs.firstIndex(where: { $0.name == name }) else {
                throw .badRequest(
                    "unknown input '\(name)': model '\(model.name)' has inputs \(model.inputs.map { "'\($0.name)'" }.joined(separator: ", "))"
                )
            }
            guard tensors[index] == nil else { throw .badRequest("input '\(name)' appears more than once") }
            if case .string("BYTES")? = item["datatype"] {
                tensors[index] = try ImageInputs.decodeBytesInput(item, name: name, model: model, binary: &binary, limits: imageLimits)
            } else {
                tensors[index] = try decodeInput(item, spec: model.inputs[index], model: model, binary: &binary)
            }
        }
        var result: [WireTensor] = []
        for (index, tensor) in tensors.enumerated() {
            guard let tensor else { throw .badRequest("missing input '\(model.inputs[index].name)'") }
            result.append(tensor)
        }
        if model.maxBatchSize > 0, model.imageInput == nil, let first = result.first, let batch = first.shape.first {
            for (index, tensor) in result.enumerated() where tensor.shape.first != batch {
                throw .badRequest(
                    "input '\(model.inputs[index].name)' has batch size \(tensor.shape.first ?? 0), input '\(model.inputs[0].name)' has \(batch): all inputs need the same"
                )
            }
        }
        return result
    }

    private static func decodeInput(_ item: JSON, spec: ValueSpec, model: ModelMetadata, binary: inout BinaryReader) throws(ServerError)
        -> WireTensor
    {
        let name = spec.name
        guard case .string(let datatype)? = item["datatype"] else { throw .badRequest("input '\(name)' has no string 'datatype'") }
        guard V2DataType.knownNames.contains(datatype) else { throw .badRequest("input '\(name)': unknown datatype '\(datatype)'") }
        guard V2DataType.dtype(datatype) == spec.dtype else {
            throw .badRequest("input '\(name)': datatype \(datatype) does not match the model's \(V2DataType.name(spec.dtype))")
        }
        let shape = try decodeShape(item["shape"], input: name)
        try ShapeCheck.check(shape, against: spec, maxBatchSize: model.maxBatchSize)
        guard let count = Shape.elementCount(shape) else {
            throw .badRequest("input '\(name)': shape \(Shape.describe(shape)) has too many elements")
        }
        let parameters = try objectField(item, "parameters", in: "input '\(name)'")
        if let size = try intField(parameters, "binary_data_size", in: "input '\(name)' parameters") {
            guard item["data"] == nil else { throw .badRequest("input '\(name)' has both 'data' and binary_data_size") }
            guard binary.enabled else {
                throw .badRequest("input '\(name)' has binary_data_size but the request has no Inference-Header-Content-Length header")
            }
            // count × byteSize cannot overflow: count is at most 2^40.
            let expected = count * spec.dtype.byteSize
            guard size == expected else {
                throw .badRequest(
                    "input '\(name)': binary_data_size is \(size) bytes, shape \(Shape.describe(shape)) of \(datatype) needs \(expected)")
            }
            guard let bytes = binary.takeTensor(size) else {
                throw .badRequest(
                    "input '\(name)': binary_data_size is \(size) bytes but only \(binary.remaining) bytes of binary data are left")
            }
            return WireTensor(dtype: spec.dtype, shape: shape, bytes: bytes)
        }
        guard let data = item["data"] else { throw .badRequest("input '\(name)' has neither 'data' nor parameters.binary_data_size") }
        return WireTensor(
            dtype: spec.dtype, shape: shape, data: try TensorDataDecoder.decode(data, count: count, dtype: spec.dtype, input: name))
    }

    static func decodeShape(_ field: JSON?, input name: String) throws(ServerError) -> [Int] {
        guard case .array(let dims)? = field else { throw .badRequest("input '\(name)' has no 'shape' array") }
        var shape: [Int] = []
        shape.reserveCapacity(dims.count)
        for dim in dims {
            guard case .int(let value) = dim, value >= 0, let size = Int(exactly: value) else {
                throw .badRequest("input '\(name)': shape must hold non-negative integers")
            }
            shape.append(size)
        }
        return shape
    }

    private static func decodeOutputs(_ root: JSON, model: ModelMetadata, binaryDefault: Bool) throws(ServerError) -> [RequestedOutput] {
        guard let field = root["outputs"], field != .null else {
            return model.outputs.indices.map { RequestedOutput(index: $0, binary: binaryDefault) }
        }
        guard case .array(let items) = field else { throw .badRequest("'outputs' must be an array, found \(field.kind)") }
        var requested: [RequestedOutput] = []
        for (position, item) in items.enumerated() {
            guard case .string(let name)? = item["name"] else { throw .badRequest("outputs[\(position)] has no string 'name'") }
            guard let index = model.outputs.firstIndex(where: { $0.name == name }) else {
                throw .badRequest(
                    "unknown output '\(name)': model '\(model.name)' has outputs \(model.outputs.map { "'\($0.name)'" }.joined(separator: ", "))"
                )
            }
            guard !requested.contains(where: { $0.index == index }) else {
                throw .badRequest("output '\(name)' is requested more than once")
            }
            let parameters = try objectField(item, "parameters", in: "output '\(name)'")
            let classes = try intField(parameters, "classification", in: "output '\(name)' parameters") ?? 0
            if classes > 0 {
                let dtype = model.outputs[index].dtype
                guard dtype == .float32 || dtype == .float64 else {
                    throw .badRequest(
                        "output '\(name)': classification needs a floating-point output, this one is \(V2DataType.name(dtype))")
                }
            }
            let binary = try boolField(parameters, "binary_data", in: "output '\(name)' parameters") ?? binaryDefault
            requested.append(RequestedOutput(index: index, binary: binary, classes: classes))
        }
        return requested
    }

    static func objectField(_ object: JSON, _ key: String, in place: String) throws(ServerError) -> JSON? {
        switch object[key] {
        case nil, .null?: return nil
        case .object(let members)?: return .object(members)
        case let other?: throw .badRequest("\(place): '\(key)' must be an object, found \(other.kind)")
        }
    }

    private static func boolField(_ object: JSON?, _ key: String, in place: String) throws(ServerError) -> Bool? {
        switch object?[key] {
        case nil, .null?: return nil
        case .bool(let value)?: return value
        case let other?: throw .badRequest("\(place): '\(key)' must be a boolean, found \(other.kind)")
        }
    }

    static func intField(_ object: JSON?, _ key: String, in place: String) throws(ServerError) -> Int? {
        switch object?[key] {
        case nil, .null?: return nil
        case .int(let value)? where value >= 0: return Int(exactly: value)
        case let other?: throw .badRequest("\(place): '\(key)' must be a non-negative integer, found \(other)")
        }
    }
}

/// Hands out consecutive slices of the binary section after the JSON header.
struct BinaryReader {
    let body: any RequestBytes
    private(set) var offset: Int
    let enabled: Bool

    init(body: any RequestBytes, start: Int, enabled: Bool) {
        self.body = body
        self.offset = start
        self.enabled = enabled
    }

    var remaining: Int { body.count - offset }

    /// The next `count` bytes in one `Data`, or nil when fewer are left.
    mutating func take(_ count: Int) -> Data? {
        guard count <= remaining else { return nil }
        defer { offset += count }
        return body.data(in: offset..<(offset + count))
    }

    /// The next `count` bytes of a numeric tensor, in pieces when the body is; nil when fewer
    /// are left.
    mutating func takeTensor(_ count: Int) -> TensorBytes? {
        guard count <= remaining else { return nil }
        defer { offset += count }
        return body.tensorBytes(in: offset..<(offset + count))
    }
}

/// Shape checks against a model input's declared shape.
enum ShapeCheck {
    static func check(_ shape: [Int], against spec: ValueSpec, maxBatchSize: Int) throws(ServerError) {
        let name = spec.name
        // Zero-sized tensors would reach kernels that assume at least one element.
        if let axis = shape.firstIndex(of: 0) { throw .badRequest("input '\(name)': dimension \(axis) is 0") }
        guard let dims = spec.shape else { return }
        guard shape.count == dims.count else {
            throw .badRequest(
                "input '\(name)': shape \(Shape.describe(shape)) has rank \(shape.count), the model expects rank \(dims.count) \(describe(dims))"
            )
        }
        for (axis, (size, dim)) in zip(shape, dims).enumerated() {
            if case .fixed(let expected) = dim, size != expected {
                throw .badRequest("input '\(name)': dimension \(axis) is \(size), the model expects \(expected) (shape \(describe(dims)))")
            }
        }
        if maxBatchSize > 0, let batch = shape.first {
            guard batch <= maxBatchSize else {
                throw .badRequest("input '\(name)': batch size \(batch) exceeds the model's max_batch_size \(maxBatchSize)")
            }
        }
    }

    static func describe(_ dims: [Dim]) -> String {
        "[" + dims.map { $0.value.map(String.init) ?? "-1" }.joined(separator: ", ") + "]"
    }
}
