import ForkliftEngine
import Foundation

/// JSON `data` (flat or nested) → little-endian bytes of one dtype. Values must already be of the
/// input's datatype: Triton converts nothing, so neither do we (1.5 for an INT64 input is a 400).
enum TensorDataDecoder {
    static func decode(_ data: JSON, count: Int, dtype: DType, input name: String) throws(ServerError) -> Data {
        // Count the leaves first: the shape is the client's claim, the leaves are what was sent.
        let leaves = try leafCount(data, input: name)
        guard leaves == count else {
            throw .badRequest("input '\(name)': the shape needs \(count) elements, 'data' has \(leaves)")
        }
        var bytes = Data(count: count * dtype.byteSize)
        var failure: ServerError?
        bytes.withUnsafeMutableBytes { raw in
            var writer = Writer(raw: raw, dtype: dtype, input: name)
            do throws(ServerError) { try writer.write(data) } catch { failure = error }
        }
        if let failure { throw failure }
        return bytes
    }

    private static func leafCount(_ value: JSON, input name: String) throws(ServerError) -> Int {
        guard case .array(let elements) = value else { return 1 }
        var total = 0
        for element in elements {
            if case .array = element {
                total += try leafCount(element, input: name)
            } else {
                total += 1
            }
        }
        return total
    }

    private struct Writer {
        let raw: UnsafeMutableRawBufferPointer
        let dtype: DType
        let input: String
        var index = 0

        init(raw: UnsafeMutableRawBufferPointer, dtype: DType, input: String) {
            self.raw = raw
            self.dtype = dtype
            self.input = input
        }

        mutating func write(_ value: JSON) throws(ServerError) {
            if case .array(let elements) = value {
                for element in elements { try write(element) }
                return
            }
            try store(value)
            index += 1
        }

        private func mismatch(_ value: JSON, _ expected: String) -> ServerError {
            .badRequest("input '\(input)': element \(index) is \(describe(value)), expected \(expected) for \(V2DataType.name(dtype))")
        }

        private func describe(_ value: JSON) -> String {
            switch value {
            case .int(let number): "\(number)"
            case .double(let number): "\(number)"
            case .bool(let flag): "\(flag)"
            default: value.kind
            }
        }

        private func integer<T: FixedWidthInteger>(_ value: JSON, as type: T.Type) throws(ServerError) -> T {
            guard case .int(let number) = value else { throw mismatch(value, "an integer") }
            guard let exact = T(exactly: number) else { throw mismatch(value, "an integer in \(T.min)...\(T.max)") }
            return exact
        }

        private mutating func store(_ value: JSON) throws(ServerError) {
            switch dtype {
            case .float32:
                switch value {
                case .double(let number): raw.storeBytes(of: Float(number), toByteOffset: index * 4, as: Float.self)
                case .int(let number): raw.storeBytes(of: Float(number), toByteOffset: index * 4, as: Float.self)
                default: throw mismatch(value, "a number")
                }
            case .float64:
                switch value {
                case .double(let number): raw.storeBytes(of: number, toByteOffset: index * 8, as: Double.self)
                case .int(let number): raw.storeBytes(of: Double(number), toByteOffset: index * 8, as: Double.self)
                default: throw mismatch(value, "a number")
                }
            case .int64: raw.storeBytes(of: try integer(value, as: Int64.self).littleEndian, toByteOffset: index * 8, as: Int64.self)
            case .int32: raw.storeBytes(of: try integer(value, as: Int32.self).littleEndian, toByteOffset: index * 4, as: Int32.self)
            case .int8: raw.storeBytes(of: try integer(value, as: Int8.self), toByteOffset: index, as: Int8.self)
            case .uint8: raw.storeBytes(of: try integer(value, as: UInt8.self), toByteOffset: index, as: UInt8.self)
            case .bool:
                guard case .bool(let flag) = value else { throw mismatch(value, "true or false") }
                raw.storeBytes(of: flag ? 1 : 0, toByteOffset: index, as: UInt8.self)
            }
        }
    }
}

/// Little-endian bytes of one dtype → JSON `data` (flat, row-major, as Triton answers).
enum TensorDataEncoder {
    static func write(_ bytes: Data, count: Int, dtype: DType, into writer: inout JSONWriter) {
        writer.bytes.append(UInt8(ascii: "["))
        bytes.withUnsafeBytes { raw in
            for index in 0..<count {
                if index > 0 { writer.bytes.append(UInt8(ascii: ",")) }
                switch dtype {
                case .float32: writer.float(raw.loadUnaligned(fromByteOffset: index * 4, as: Float.self))
                case .float64: writer.double(raw.loadUnaligned(fromByteOffset: index * 8, as: Double.self))
                case .int64: writer.raw(String(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: index * 8, as: Int64.self))))
                case .int32: writer.raw(String(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: index * 4, as: Int32.self))))
                case .int8: writer.raw(String(raw.loadUnaligned(fromByteOffset: index, as: Int8.self)))
                case .uint8: writer.raw(String(raw[index]))
                case .bool: writer.raw(raw[index] != 0 ? "true" : "false")
                }
            }
        }
        writer.bytes.append(UInt8(ascii: "]"))
    }
}
