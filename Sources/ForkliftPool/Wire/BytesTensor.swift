import Foundation

/// Triton's BYTES tensor layout, used for encoded images on the way in and classification strings
/// on the way out: each element is a 4-byte little-endian length, then that many bytes.
public enum BytesTensor {
    public struct LayoutError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    public static func serialize<Element: Collection<UInt8>>(_ elements: [Element]) -> Data {
        var data = Data(capacity: elements.reduce(0) { $0 + 4 + $1.count })
        for element in elements {
            withUnsafeBytes(of: UInt32(element.count).littleEndian) { data.append(contentsOf: $0) }
            data.append(contentsOf: element)
        }
        return data
    }

    /// The elements, each checked against the bytes that are left; nothing is allocated from a
    /// length before that check.
    public static func elements(of data: Data) throws(LayoutError) -> [Data] {
        var result: [Data] = []
        var offset = data.startIndex
        while offset < data.endIndex {
            guard data.endIndex - offset >= 4 else {
                throw LayoutError(description: "element \(result.count): \(data.endIndex - offset) bytes left, too few for its length")
            }
            let length = data[offset..<(offset + 4)].withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))) }
            offset += 4
            guard length <= data.endIndex - offset else {
                throw LayoutError(description: "element \(result.count) claims \(length) bytes, \(data.endIndex - offset) are left")
            }
            result.append(data[offset..<(offset + length)])
            offset += length
        }
        return result
    }
}
