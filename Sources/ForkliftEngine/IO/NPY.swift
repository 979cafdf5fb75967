import Foundation

/// Reads and writes NumPy `.npy` files (format versions 1–3, C order, little-endian).
public enum NPY {
    public enum Error: Swift.Error, CustomStringConvertible {
        case malformed(String)
        case unsupportedDType(String)

        public var description: String {
            switch self {
            case .malformed(let why): "not a valid .npy file: \(why)"
            case .unsupportedDType(let descr):
                ".npy dtype '\(descr)' is not supported (use float32, float64, int64, int32, int8, uint8 or bool)"
            }
        }
    }

    private static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
    private static let descriptors: [String: DType] = [
        "<f4": .float32, "<f8": .float64, "<i8": .int64, "<i4": .int32, "|i1": .int8, "|u1": .uint8, "|b1": .bool,
    ]

    public static func read(_ data: Data) throws(Error) -> Tensor {
        let bytes = [UInt8](data)
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw .malformed("missing the \\x93NUMPY magic") }
        let major = bytes[6]
        let headerStart = major == 1 ? 10 : 12
        guard major >= 1, major <= 3, bytes.count >= headerStart else { throw .malformed("unknown format version \(major)") }
        let headerLength =
            major == 1
            ? Int(bytes[8]) | Int(bytes[9]) << 8
            : Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
        guard headerStart + headerLength <= bytes.count else { throw .malformed("header runs past the end of the file") }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        guard let descr = field("descr", in: header)?.trimmingCharacters(in: CharacterSet(charactersIn: "'\" ")) else {
            throw .malformed("header has no descr")
        }
        guard let dtype = descriptors[descr] ?? (descr == "=f4" ? .float32 : nil) else { throw .unsupportedDType(descr) }
        if let order = field("fortran_order", in: header), order.contains("True") {
            throw .malformed("Fortran-ordered arrays are not supported; save with np.ascontiguousarray")
        }
        guard let shapeText = field("shape", in: header) else { throw .malformed("header has no shape") }
        let dims = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() "))
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var shape: [Int] = []
        for dim in dims {
            guard let value = Int(dim), value >= 0 else { throw .malformed("bad dimension '\(dim)'") }
            shape.append(value)
        }
        guard let count = Shape.elementCount(shape) else { throw .malformed("shape \(shape) is too large") }
        let payload = headerStart + headerLength
        guard bytes.count - payload == count * dtype.byteSize else {
            throw .malformed(
                "shape \(Shape.describe(shape)) of \(dtype) needs \(count * dtype.byteSize) bytes, file has \(bytes.count - payload)")
        }
        return bytes[payload...].withUnsafeBytes { Tensor(dtype: dtype, shape: shape, bytes: $0) }
    }

    /// The text after `'name':` up to the next top-level comma (shape tuples keep their commas).
    private static func field(_ name: String, in header: String) -> String? {
        guard let key = header.range(of: "'\(name)':") else { return nil }
        var depth = 0
        var value = ""
        for character in header[key.upperBound...] {
            if character == "(" { depth += 1 }
            if character == ")" { depth -= 1 }
            if (character == "," && depth == 0) || character == "}" { break }
            value.append(character)
        }
        return value.trimmingCharacters(in: .whitespaces)
    }

    public static func write(_ tensor: Tensor) -> Data {
        let descr = descriptors.first { $0.value == tensor.dtype }?.key ?? "<f4"
        let shapeText =
            tensor.shape.isEmpty
            ? "()" : tensor.shape.count == 1 ? "(\(tensor.shape[0]),)" : "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data(magic + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
        data.append(contentsOf: Array(header.utf8))
        data.append(Data(bytes: tensor.raw, count: tensor.byteCount))
        return data
    }
}
