import ForkliftEngine

/// One input tensor of a request, as raw little-endian bytes and a V2 datatype name.
public struct V2Tensor: Sendable {
    public let name: String
    public let datatype: String
    public let shape: [Int]
    /// Raw element bytes; for BYTES, each element is a 4-byte little-endian length and then its bytes.
    public let bytes: [UInt8]

    public init(name: String, datatype: String, shape: [Int], bytes: [UInt8]) {
        self.name = name
        self.datatype = datatype
        self.shape = shape
        self.bytes = bytes
    }

    /// Bytes per element of each fixed-size V2 datatype.
    public static let elementSizes: [String: Int] = [
        "BOOL": 1, "UINT8": 1, "INT8": 1, "UINT16": 2, "INT16": 2, "FP16": 2, "BF16": 2,
        "UINT32": 4, "INT32": 4, "FP32": 4, "UINT64": 8, "INT64": 8, "FP64": 8,
    ]

    /// The V2 datatype of an engine dtype.
    public static func datatype(of dtype: DType) -> String { dtype.v2Name }

    /// A tensor read from a file, under the model input's name.
    public init(name: String, tensor: Tensor) {
        let raw = UnsafeRawBufferPointer(start: tensor.raw, count: tensor.byteCount)
        self.init(name: name, datatype: Self.datatype(of: tensor.dtype), shape: tensor.shape, bytes: Array(raw))
    }

    /// Random data of `shape`: floats in [0, 1), integers in 0..<10, booleans.
    public static func random<G: RandomNumberGenerator>(
        name: String, datatype: String, shape: [Int], using generator: inout G
    ) throws(BenchError) -> V2Tensor {
        guard let size = elementSizes[datatype], datatype != "FP16", datatype != "BF16" else {
            throw BenchError(
                .badInput, "input '\(name)' is \(datatype): random data is made only for FP32, FP64, integer and BOOL inputs; give --input")
        }
        let count = shape.reduce(1, *)
        var bytes = [UInt8](repeating: 0, count: count * size)
        bytes.withUnsafeMutableBytes { raw in
            switch datatype {
            case "FP32":
                for index in 0..<count {
                    raw.storeBytes(of: Float.random(in: 0..<1, using: &generator), toByteOffset: index * 4, as: Float.self)
                }
            case "FP64":
                for index in 0..<count {
                    raw.storeBytes(of: Double.random(in: 0..<1, using: &generator), toByteOffset: index * 8, as: Double.self)
                }
            case "BOOL":
                for index in 0..<count { raw[index] = Bool.random(using: &generator) ? 1 : 0 }
            default:
                // Little-endian small integers: the low byte carries the value, the rest stay zero.
                for index in 0..<count { raw[index * size] = UInt8.random(in: 0..<10, using: &generator) }
            }
        }
        return V2Tensor(name: name, datatype: datatype, shape: shape, bytes: bytes)
    }

    /// A BYTES tensor of encoded items (e.g. JPEG files), in Triton's binary layout.
    public static func bytesTensor(name: String, items: [[UInt8]], shape: [Int]) -> V2Tensor {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(items.reduce(0) { $0 + 4 + $1.count })
        for item in items {
            let length = UInt32(item.count)
            for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: length >> UInt32(shift))) }
            bytes += item
        }
        return V2Tensor(name: name, datatype: "BYTES", shape: shape, bytes: bytes)
    }

    /// The elements as JSON text (a flat array), for the JSON encoding.
    func jsonData() throws(BenchError) -> String {
        let count = shape.reduce(1, *)
        let known: Set<String> = ["FP32", "FP64", "BOOL", "UINT8", "INT8", "INT32", "UINT32", "INT64", "UINT64"]
        guard known.contains(datatype) else {
            throw BenchError(.badInput, "input '\(name)': \(datatype) cannot be sent as JSON; use --binary")
        }
        var text = "["
        text.reserveCapacity(count * 8)
        bytes.withUnsafeBytes { raw in
            for index in 0..<count {
                if index > 0 { text += "," }
                switch datatype {
                case "FP32": text += Self.format(Double(raw.loadUnaligned(fromByteOffset: index * 4, as: Float.self)))
                case "FP64": text += Self.format(raw.loadUnaligned(fromByteOffset: index * 8, as: Double.self))
                case "BOOL": text += raw[index] != 0 ? "true" : "false"
                case "UINT8": text += String(raw[index])
                case "INT8": text += String(Int8(bitPattern: raw[index]))
                case "INT32": text += String(raw.loadUnaligned(fromByteOffset: index * 4, as: Int32.self))
                case "UINT32": text += String(raw.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self))
                case "INT64": text += String(raw.loadUnaligned(fromByteOffset: index * 8, as: Int64.self))
                default: text += String(raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self))
                }
            }
        }
        text += "]"
        return text
    }

    /// Five significant decimals are plenty for load: shorter bodies, same parsing work per number.
    private static func format(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        let scaled = (value * 100_000).rounded()
        if scaled == 0 { return "0" }
        let negative = scaled < 0
        let digits = String(Int64(abs(scaled)))
        let padded = digits.count <= 5 ? String(repeating: "0", count: 6 - digits.count) + digits : digits
        let whole = padded.dropLast(5)
        var fraction = Substring(padded.suffix(5))
        while fraction.last == "0" { fraction = fraction.dropLast() }
        return (negative ? "-" : "") + whole + (fraction.isEmpty ? "" : "." + fraction)
    }
}
