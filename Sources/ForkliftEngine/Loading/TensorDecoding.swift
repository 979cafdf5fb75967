import Foundation
import SwiftProtobuf

/// Turns `TensorProto` messages into tensors, from raw bytes, typed fields or external files.
enum TensorDecoding {
    /// `baseDirectory` is the model's folder, against which external data locations resolve.
    static func decode(_ proto: Onnx_TensorProto, baseDirectory: URL?) throws(EngineError) -> Tensor {
        let name = proto.name
        guard let dtype = DType(rawValue: proto.dataType) else {
            throw .malformedModel("tensor '\(name)' has dtype \(DType.onnxName(proto.dataType)), which the engine does not support")
        }
        let shape = proto.dims.map { Int(clamping: $0) }
        guard let count = Shape.elementCount(shape) else {
            throw .malformedModel("tensor '\(name)' has invalid or overflowing dims \(proto.dims)")
        }
        let byteCount = count * dtype.byteSize
        if proto.hasSegment {
            throw .malformedModel("tensor '\(name)' is segmented, which the engine does not support")
        }
        if proto.dataLocation == .external {
            let data = try readExternal(proto, byteCount: byteCount, baseDirectory: baseDirectory)
            return try fromBytes(data, dtype: dtype, shape: shape, count: count, name: name)
        }
        if proto.hasRawData {
            return try fromBytes(proto.rawData, dtype: dtype, shape: shape, count: count, name: name)
        }
        return try fromTypedFields(proto, dtype: dtype, shape: shape, count: count)
    }

    private static func fromBytes(_ data: Data, dtype: DType, shape: [Int], count: Int, name: String) throws(EngineError) -> Tensor {
        guard data.count == count * dtype.byteSize else {
            throw .malformedModel(
                "tensor '\(name)' has \(data.count) bytes of data, but shape \(Shape.describe(shape)) of \(dtype) needs \(count * dtype.byteSize)"
            )
        }
        return data.withUnsafeBytes { Tensor(dtype: dtype, shape: shape, bytes: $0) }
    }

    private static func fromTypedFields(_ proto: Onnx_TensorProto, dtype: DType, shape: [Int], count: Int) throws(EngineError) -> Tensor {
        let tensor = Tensor(dtype: dtype, shape: shape)
        let available: Int
        switch dtype {
        case .float32: available = proto.floatData.count
        case .float64: available = proto.doubleData.count
        case .int64: available = proto.int64Data.count
        case .int32, .int8, .uint8, .bool: available = proto.int32Data.count
        }
        guard available == count else {
            throw .malformedModel("tensor '\(proto.name)' has \(available) values, but shape \(Shape.describe(shape)) needs \(count)")
        }
        switch dtype {
        case .float32: copy(proto.floatData, to: tensor.pointer(as: Float.self))
        case .float64: copy(proto.doubleData, to: tensor.pointer(as: Double.self))
        case .int64: copy(proto.int64Data, to: tensor.pointer(as: Int64.self))
        case .int32: copy(proto.int32Data, to: tensor.pointer(as: Int32.self))
        case .int8:
            let out = tensor.pointer(as: Int8.self)
            for (index, value) in proto.int32Data.enumerated() { out[index] = Int8(truncatingIfNeeded: value) }
        case .uint8, .bool:
            let out = tensor.pointer(as: UInt8.self)
            for (index, value) in proto.int32Data.enumerated() { out[index] = UInt8(truncatingIfNeeded: value) }
        }
        return tensor
    }

    private static func copy<T>(_ values: [T], to destination: UnsafeMutablePointer<T>) {
        values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { destination.update(from: base, count: source.count) }
        }
    }

    private static func readExternal(_ proto: Onnx_TensorProto, byteCount: Int, baseDirectory: URL?) throws(EngineError) -> Data {
        let entries = Dictionary(proto.externalData.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
        guard let location = entries["location"], !location.isEmpty else {
            throw .malformedModel("tensor '\(proto.name)' is external but names no location")
        }
        guard let base = baseDirectory else {
            throw .malformedModel("tensor '\(proto.name)' is external ('\(location)') but the model was not loaded from a file")
        }
        // External files must stay inside the model's folder.
        guard !location.hasPrefix("/"), !location.split(separator: "/").contains("..") else {
            throw .malformedModel("tensor '\(proto.name)' has external location '\(location)' outside the model's folder")
        }
        let offset = Int(entries["offset"] ?? "0") ?? -1
        let length = entries["length"].map { Int($0) ?? -1 } ?? byteCount
        guard offset >= 0, length == byteCount else {
            throw .malformedModel("tensor '\(proto.name)' has external offset/length that do not match its \(byteCount) bytes")
        }
        let url = base.appendingPathComponent(location)
        guard let handle = try? FileHandle(forReadingFrom: url) else {
            throw .malformedModel("tensor '\(proto.name)': cannot open external data file '\(url.path)'")
        }
        defer { try? handle.close() }
        do {
            try handle.seek(toOffset: UInt64(offset))
            let data = try handle.read(upToCount: byteCount) ?? Data()
            guard data.count == byteCount else {
                throw EngineError.malformedModel(
                    "tensor '\(proto.name)': external file '\(location)' holds \(data.count) bytes at offset \(offset), \(byteCount) needed"
                )
            }
            return data
        } catch let error as EngineError {
            throw error
        } catch {
            throw .malformedModel("tensor '\(proto.name)': reading '\(location)': \(error)")
        }
    }
}

/// Reads serialized `TensorProto` files, such as the ONNX test suite's `input_0.pb`.
public enum TensorFile {
    public static func read(_ url: URL) throws(EngineError) -> (name: String, tensor: Tensor) {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw .unreadableFile(path: url.path, reason: error.localizedDescription)
        }
        let proto: Onnx_TensorProto
        do { proto = try Onnx_TensorProto(serializedBytes: data) } catch {
            throw .unreadableFile(path: url.path, reason: "not a TensorProto: \(error)")
        }
        return (proto.name, try TensorDecoding.decode(proto, baseDirectory: url.deletingLastPathComponent()))
    }
}
