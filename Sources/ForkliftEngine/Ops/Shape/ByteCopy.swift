import Foundation

/// Dtype-agnostic element moves: the shape ops only copy bytes, so they work on every dtype.
enum ByteCopy {
    /// Writes `count` copies of the `byteSize`-byte element at `element` into `destination`.
    static func fill(_ destination: UnsafeMutableRawPointer, count: Int, element: UnsafeRawPointer, byteSize: Int) {
        guard count > 0 else { return }
        destination.copyMemory(from: element, byteCount: byteSize)
        // Doubling copies keep the call count logarithmic for any element size.
        var filled = 1
        while filled < count {
            let chunk = min(filled, count - filled)
            (destination + filled * byteSize).copyMemory(from: destination, byteCount: chunk * byteSize)
            filled += chunk
        }
    }

    /// The bytes of one element of `dtype` holding `value` (converted like a C cast, bool as != 0).
    static func element(_ value: Double, dtype: DType) -> [UInt8] {
        func bytes<T>(_ typed: T) -> [UInt8] { withUnsafeBytes(of: typed) { Array($0) } }
        switch dtype {
        case .float32: return bytes(Float(value))
        case .float64: return bytes(value)
        case .int64: return bytes(Int64(exactly: value.rounded(.towardZero)) ?? 0)
        case .int32: return bytes(Int32(exactly: value.rounded(.towardZero)) ?? 0)
        case .int8: return bytes(Int8(exactly: value.rounded(.towardZero)) ?? 0)
        case .uint8: return bytes(UInt8(exactly: value.rounded(.towardZero)) ?? 0)
        case .bool: return [value != 0 ? 1 : 0]
        }
    }

    /// `destination[i] = source[i * sourceStride]` for `count` elements of `byteSize` bytes.
    static func gather(
        _ destination: UnsafeMutableRawPointer, _ source: UnsafeRawPointer, count: Int, sourceStride: Int, byteSize: Int
    ) {
        switch byteSize {
        case 1: gatherTyped(UInt8.self, destination, source, count, sourceStride)
        case 2: gatherTyped(UInt16.self, destination, source, count, sourceStride)
        case 4: gatherTyped(UInt32.self, destination, source, count, sourceStride)
        case 8: gatherTyped(UInt64.self, destination, source, count, sourceStride)
        default:
            for i in 0..<count {
                (destination + i * byteSize).copyMemory(from: source + i * sourceStride * byteSize, byteCount: byteSize)
            }
        }
    }

    private static func gatherTyped<T>(
        _: T.Type, _ destination: UnsafeMutableRawPointer, _ source: UnsafeRawPointer, _ count: Int, _ stride: Int
    ) {
        let out = destination.assumingMemoryBound(to: T.self)
        let input = source.assumingMemoryBound(to: T.self)
        for i in 0..<count { out[i] = input[i * stride] }
    }

    /// Blocked 2-D transpose: `destination[i * rows + j] = source[i + j * sourceRowStride]` for
    /// i < columns, j < rows, where the destination's rows are `destinationRowStride` apart.
    static func transpose2D(
        _ destination: UnsafeMutableRawPointer, destinationRowStride: Int, _ source: UnsafeRawPointer,
        sourceRowStride: Int, rows: Int, columns: Int, byteSize: Int
    ) {
        switch byteSize {
        case 1: transposeTyped(UInt8.self, destination, destinationRowStride, source, sourceRowStride, rows, columns)
        case 2: transposeTyped(UInt16.self, destination, destinationRowStride, source, sourceRowStride, rows, columns)
        case 4: transposeTyped(UInt32.self, destination, destinationRowStride, source, sourceRowStride, rows, columns)
        case 8: transposeTyped(UInt64.self, destination, destinationRowStride, source, sourceRowStride, rows, columns)
        default:
            for i in 0..<columns {
                for j in 0..<rows {
                    (destination + (i * destinationRowStride + j) * byteSize)
                        .copyMemory(from: source + (i + j * sourceRowStride) * byteSize, byteCount: byteSize)
                }
            }
        }
    }

    /// Works in tiles so that both the reads and the writes stay within a few cache lines.
    private static func transposeTyped<T>(
        _: T.Type, _ destination: UnsafeMutableRawPointer, _ destinationRowStride: Int, _ source: UnsafeRawPointer,
        _ sourceRowStride: Int, _ rows: Int, _ columns: Int
    ) {
        let out = destination.assumingMemoryBound(to: T.self)
        let input = source.assumingMemoryBound(to: T.self)
        let tile = 32
        var i0 = 0
        while i0 < columns {
            let i1 = min(i0 + tile, columns)
            var j0 = 0
            while j0 < rows {
                let j1 = min(j0 + tile, rows)
                for i in i0..<i1 {
                    let outRow = out + i * destinationRowStride
                    for j in j0..<j1 { outRow[j] = input[i + j * sourceRowStride] }
                }
                j0 = j1
            }
            i0 = i1
        }
    }
}
