import Foundation

/// Tensors from and to JSON: nested arrays in, V2-style `{"name","datatype","shape","data"}` out.
public enum TensorJSON {
    public enum Error: Swift.Error, CustomStringConvertible {
        case invalid(String)

        public var description: String {
            switch self {
            case .invalid(let why): why
            }
        }
    }

    /// Parses a (nested) JSON array of numbers into a tensor of `dtype`; the nesting gives the shape.
    /// A bare object `{"shape": [...], "data": [...]}` is accepted too.
    public static func parse(_ data: Data, dtype: DType) throws(Error) -> Tensor {
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) } catch {
            throw .invalid("not valid JSON: \(error.localizedDescription)")
        }
        if let object = root as? [String: Any], let values = object["data"] {
            var flat: [Double] = []
            var inferred: [Int] = []
            try flatten(values, depth: 0, shape: &inferred, into: &flat)
            let shape = (object["shape"] as? [Int]) ?? inferred
            guard Shape.elementCount(shape) == flat.count else {
                throw .invalid("shape \(Shape.describe(shape)) needs \(Shape.elementCount(shape) ?? -1) values, data has \(flat.count)")
            }
            return make(flat, shape: shape, dtype: dtype)
        }
        var flat: [Double] = []
        var shape: [Int] = []
        try flatten(root, depth: 0, shape: &shape, into: &flat)
        return make(flat, shape: shape, dtype: dtype)
    }

    private static func flatten(_ value: Any, depth: Int, shape: inout [Int], into flat: inout [Double]) throws(Error) {
        if let array = value as? [Any] {
            if depth == shape.count {
                shape.append(array.count)
            } else if shape[depth] != array.count {
                throw .invalid("ragged array: \(array.count) elements at depth \(depth), expected \(shape[depth])")
            }
            for element in array { try flatten(element, depth: depth + 1, shape: &shape, into: &flat) }
            return
        }
        guard depth == shape.count else { throw .invalid("ragged array: a number at depth \(depth), expected a list") }
        if let number = value as? NSNumber {
            flat.append(number.doubleValue)
        } else {
            throw .invalid("expected numbers, found \(type(of: value))")
        }
    }

    static func make(_ values: [Double], shape: [Int], dtype: DType) -> Tensor {
        let tensor = Tensor(dtype: dtype, shape: shape)
        for (index, value) in values.enumerated() {
            switch dtype {
            case .float32: tensor.floats[index] = Float(value)
            case .float64: tensor.pointer(as: Double.self)[index] = value
            case .int64: tensor.int64s[index] = Int64(exactly: value.rounded(.towardZero)) ?? 0
            case .int32: tensor.pointer(as: Int32.self)[index] = Int32(exactly: value.rounded(.towardZero)) ?? 0
            case .int8: tensor.pointer(as: Int8.self)[index] = Int8(exactly: value.rounded(.towardZero)) ?? 0
            case .uint8: tensor.pointer(as: UInt8.self)[index] = UInt8(exactly: value.rounded(.towardZero)) ?? 0
            case .bool: tensor.pointer(as: UInt8.self)[index] = value != 0 ? 1 : 0
            }
        }
        return tensor
    }
}
