import Foundation

/// Element types the engine stores. Raw values are ONNX's `TensorProto.DataType` codes.
public enum DType: Int32, Sendable, CaseIterable, CustomStringConvertible {
    case float32 = 1
    case uint8 = 2
    case int8 = 3
    case int32 = 6
    case int64 = 7
    case bool = 9
    case float64 = 11

    public var byteSize: Int {
        switch self {
        case .uint8, .int8, .bool: 1
        case .float32, .int32: 4
        case .int64, .float64: 8
        }
    }

    /// The ONNX name, as `inspect` and error messages show it.
    public var description: String {
        switch self {
        case .float32: "float32"
        case .uint8: "uint8"
        case .int8: "int8"
        case .int32: "int32"
        case .int64: "int64"
        case .bool: "bool"
        case .float64: "float64"
        }
    }

    /// The V2 inference protocol's datatype name ("FP32", "INT64", …), shared by the server and
    /// the load generator.
    public var v2Name: String {
        switch self {
        case .float32: "FP32"
        case .float64: "FP64"
        case .int64: "INT64"
        case .int32: "INT32"
        case .int8: "INT8"
        case .uint8: "UINT8"
        case .bool: "BOOL"
        }
    }

    /// ONNX type codes that exist but that the engine does not compute with.
    static func onnxName(_ code: Int32) -> String {
        let names: [Int32: String] = [
            0: "undefined", 4: "uint16", 5: "int16", 8: "string", 10: "float16", 12: "uint32",
            13: "uint64", 14: "complex64", 15: "complex128", 16: "bfloat16", 17: "float8e4m3fn",
            18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4",
        ]
        return DType(rawValue: code)?.description ?? names[code] ?? "type code \(code)"
    }
}

/// Owns one 64-byte-aligned allocation. Storage from a `BufferPool` goes back to it on release,
/// so that a session's steady state does not call malloc.
public final class TensorStorage: @unchecked Sendable {
    public let data: UnsafeMutableRawPointer
    public let capacity: Int
    let pool: BufferPool?

    init(data: UnsafeMutableRawPointer, capacity: Int, pool: BufferPool?) {
        self.data = data
        self.capacity = capacity
        self.pool = pool
    }

    /// Allocations this large get transparent huge pages.
    static let hugePageSize = 2 << 20

    /// Returns nil when the allocation fails: sizes come from models and requests.
    static func allocate(_ capacity: Int, pool: BufferPool? = nil) -> TensorStorage? {
        var raw: UnsafeMutableRawPointer?
        if capacity >= hugePageSize {
            // Large weights and activations are streamed whole on every run, and with 4 KiB pages
            // a 23 MB weight matrix costs thousands of TLB misses per pass. Debian enables huge
            // pages only where asked (transparent_hugepage=madvise), so ask, on 2 MiB boundaries.
            let (padded, overflow) = capacity.addingReportingOverflow(hugePageSize - 1)
            guard !overflow else { return nil }
            let length = padded / hugePageSize * hugePageSize
            guard posix_memalign(&raw, hugePageSize, length) == 0, let raw else { return nil }
            _ = madvise(raw, length, Int32(MADV_HUGEPAGE))
            return TensorStorage(data: raw, capacity: capacity, pool: pool)
        }
        // A zero-byte tensor still gets a valid pointer.
        guard posix_memalign(&raw, 64, max(capacity, 64)) == 0, let raw else { return nil }
        return TensorStorage(data: raw, capacity: capacity, pool: pool)
    }

    /// For tensors whose size was already checked or that the engine chose itself.
    static func allocateOrDie(_ capacity: Int) -> TensorStorage {
        guard let storage = allocate(capacity) else { preconditionFailure("out of memory allocating \(capacity) bytes") }
        return storage
    }

    deinit {
        if let pool {
            pool.recycle(data, capacity: capacity)
        } else {
            free(data)
        }
    }
}

/// A dense, row-major tensor. Copies share storage: kernels write only into the outputs they are given.
public struct Tensor: @unchecked Sendable, CustomStringConvertible {
    public let dtype: DType
    public let shape: [Int]
    public let count: Int
    public let storage: TensorStorage

    /// Creates a zero-filled tensor. The shape must have been checked with `Shape.elementCount`.
    public init(dtype: DType, shape: [Int]) {
        self = .uninitialized(dtype: dtype, shape: shape)
        memset(storage.data, 0, byteCount)
    }

    /// A tensor whose every byte the caller writes next, such as a request's input copied in: zero
    /// filling it first would pass over its memory once more. The shape must have been checked.
    public static func uninitialized(dtype: DType, shape: [Int]) -> Tensor {
        let count = shape.reduce(1, *)
        return Tensor(dtype: dtype, shape: shape, count: count, storage: TensorStorage.allocateOrDie(count * dtype.byteSize))
    }

    init(dtype: DType, shape: [Int], count: Int, storage: TensorStorage) {
        self.dtype = dtype
        self.shape = shape
        self.count = count
        self.storage = storage
    }

    public init(floats: [Float], shape: [Int]) {
        self.init(dtype: .float32, shape: shape)
        precondition(floats.count == count, "\(floats.count) values for shape \(shape)")
        floats.withUnsafeBytes { if let base = $0.baseAddress { storage.data.copyMemory(from: base, byteCount: $0.count) } }
    }

    public init(int64s: [Int64], shape: [Int]) {
        self.init(dtype: .int64, shape: shape)
        precondition(int64s.count == count, "\(int64s.count) values for shape \(shape)")
        int64s.withUnsafeBytes { if let base = $0.baseAddress { storage.data.copyMemory(from: base, byteCount: $0.count) } }
    }

    /// Creates a tensor from raw little-endian bytes, which must hold exactly `count × byteSize` bytes.
    public init(dtype: DType, shape: [Int], bytes: UnsafeRawBufferPointer) {
        self = .uninitialized(dtype: dtype, shape: shape)
        precondition(bytes.count == count * dtype.byteSize)
        if let base = bytes.baseAddress, bytes.count > 0 { storage.data.copyMemory(from: base, byteCount: bytes.count) }
    }

    /// The same data under another shape of equal element count (Reshape, Flatten, Squeeze).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(dtype: dtype, shape: newShape, count: count, storage: storage)
    }

    /// A tensor of this type without its data, for weights that a kernel packed away; only
    /// kernels listing the input in `absorbedInputs` ever receive one.
    func shapeOnly() -> Tensor {
        Tensor(dtype: dtype, shape: shape, count: count, storage: TensorStorage.allocateOrDie(0))
    }

    /// Bytes of data this tensor holds (zero for a `shapeOnly` placeholder).
    var residentBytes: Int { min(byteCount, storage.capacity) }

    public var byteCount: Int { count * dtype.byteSize }
    public var rank: Int { shape.count }
    public var raw: UnsafeMutableRawPointer { storage.data }

    public var floats: UnsafeMutablePointer<Float> { storage.data.assumingMemoryBound(to: Float.self) }
    public var int64s: UnsafeMutablePointer<Int64> { storage.data.assumingMemoryBound(to: Int64.self) }

    public func pointer<T>(as: T.Type) -> UnsafeMutablePointer<T> { storage.data.assumingMemoryBound(to: T.self) }

    public func floatArray() -> [Float] {
        precondition(dtype == .float32)
        return Array(UnsafeBufferPointer(start: floats, count: count))
    }

    public func int64Array() -> [Int64] {
        precondition(dtype == .int64)
        return Array(UnsafeBufferPointer(start: int64s, count: count))
    }

    /// Values of an integer tensor (int64 or int32) as Int, for shape-like inputs.
    public func integers() -> [Int] {
        switch dtype {
        case .int64: return UnsafeBufferPointer(start: int64s, count: count).map { Int($0) }
        case .int32: return UnsafeBufferPointer(start: pointer(as: Int32.self), count: count).map { Int($0) }
        default: return []
        }
    }

    /// Values converted to Double, whatever the dtype: for tests and printing.
    public func doubles() -> [Double] {
        switch dtype {
        case .float32: return UnsafeBufferPointer(start: floats, count: count).map(Double.init)
        case .float64: return Array(UnsafeBufferPointer(start: pointer(as: Double.self), count: count))
        case .int64: return UnsafeBufferPointer(start: int64s, count: count).map(Double.init)
        case .int32: return UnsafeBufferPointer(start: pointer(as: Int32.self), count: count).map(Double.init)
        case .int8: return UnsafeBufferPointer(start: pointer(as: Int8.self), count: count).map(Double.init)
        case .uint8, .bool: return UnsafeBufferPointer(start: pointer(as: UInt8.self), count: count).map(Double.init)
        }
    }

    public func copy() -> Tensor {
        let out = Tensor(dtype: dtype, shape: shape)
        out.raw.copyMemory(from: raw, byteCount: byteCount)
        return out
    }

    public var description: String { "Tensor<\(dtype)>\(shape)" }
}

/// Shape arithmetic that never traps on hostile sizes.
public enum Shape {
    /// Largest element count the engine accepts for one tensor (2^40 elements).
    static let maxElements = 1 << 40

    /// The element count, or nil when a dimension is negative or the product overflows.
    public static func elementCount(_ shape: [Int]) -> Int? {
        var total = 1
        for dim in shape {
            guard dim >= 0 else { return nil }
            let (product, overflow) = total.multipliedReportingOverflow(by: dim)
            guard !overflow, product <= maxElements else { return nil }
            total = product
        }
        return total
    }

    public static func describe(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }

    /// Row-major strides.
    static func strides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[axis] = acc
            acc *= shape[axis]
        }
        return strides
    }

    /// Multidirectional (NumPy) broadcasting of two shapes, or nil when they are incompatible.
    public static func broadcast(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            if da == db || db == 1 {
                out[i] = da
            } else if da == 1 {
                out[i] = db
            } else {
                return nil
            }
        }
        return out
    }

    /// Resolves a possibly negative axis against a rank.
    static func axis(_ axis: Int, rank: Int) throws(KernelError) -> Int {
        let resolved = axis < 0 ? axis + rank : axis
        guard resolved >= 0, resolved < max(rank, 1) else {
            throw .invalid("axis \(axis) is out of range for rank \(rank)")
        }
        return resolved
    }
}
