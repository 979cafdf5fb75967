import Foundation
import NIOCore

/// Bytes of a request body, read by range: a whole array, or the parts the pipeline delivered.
/// The decoder reads the JSON header and each binary tensor through it, so that a tensor is
/// copied once, from the received bytes into its own storage.
public protocol RequestBytes: Sendable {
    var count: Int { get }
    /// Calls `body` with the bytes in `range` in one piece.
    func withBytes<R, E: Error>(in range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R
    /// The bytes in `range`, copied once.
    func data(in range: Range<Int>) -> Data
}

extension Array: RequestBytes where Element == UInt8 {
    public func withBytes<R, E: Error>(in range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withUnsafeBytes { raw in Result { () throws(E) -> R in try body(UnsafeRawBufferPointer(rebasing: raw[range])) } }.get()
    }

    public func data(in range: Range<Int>) -> Data {
        // One memcpy; `Data(self[range])` would go through the generic sequence initializer.
        withUnsafeBytes { raw in raw.baseAddress.map { Data(bytes: $0 + range.lowerBound, count: range.count) } ?? Data() }
    }
}

/// A request body as the pipeline delivered it. The parts are kept as they came: appending each
/// to one growing array copied a large body at every doubling (a sixth of the server's time per
/// ResNet-18 request, by perf), and joining them before the decoder copies the tensors out of
/// them would copy it once more.
struct BodyParts: RequestBytes {
    private var parts: [ByteBuffer] = []
    /// Bytes received so far.
    private(set) var count = 0

    /// Parts smaller than this are copied. Holding a slice of the channel's read buffer makes
    /// NIO allocate a new one for the next read, which costs more than copying a few kilobytes.
    static let copyLimit = 16 << 10

    mutating func append(_ part: ByteBuffer) {
        guard part.readableBytes > 0 else { return }
        count += part.readableBytes
        parts.append(part.readableBytes < Self.copyLimit ? ByteBuffer(bytes: part.readableBytesView) : part)
    }

    /// The whole body in one array.
    func joined() -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = copy(0..<count, to: UnsafeMutableRawBufferPointer(buffer))
        }
    }

    func withBytes<R, E: Error>(in range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        // In place when one part holds the whole range (a JSON header usually does).
        var start = 0
        for part in parts {
            let end = start + part.readableBytes
            if range.lowerBound < end {
                guard range.upperBound <= end else { break }
                let offset = range.lowerBound - start
                return try part.withUnsafeReadableBytes { raw in
                    Result { () throws(E) -> R in try body(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + range.count)])) }
                }.get()
            }
            start = end
        }
        let joined = [UInt8](unsafeUninitializedCapacity: range.count) { buffer, initialized in
            initialized = copy(range, to: UnsafeMutableRawBufferPointer(buffer))
        }
        return try joined.withBytes(in: 0..<joined.count, body)
    }

    func data(in range: Range<Int>) -> Data {
        var data = Data(capacity: range.count)
        visit(range) { data.append(contentsOf: $0) }
        return data
    }

    /// Copies `range` to `target`; returns the bytes copied.
    private func copy(_ range: Range<Int>, to target: UnsafeMutableRawBufferPointer) -> Int {
        var offset = 0
        visit(range) { piece in
            guard let base = target.baseAddress, let source = piece.baseAddress else { return }
            (base + offset).copyMemory(from: source, byteCount: piece.count)
            offset += piece.count
        }
        return offset
    }

    /// Calls `body` with the pieces of `range`, part by part, in order.
    private func visit(_ range: Range<Int>, _ body: (UnsafeRawBufferPointer) -> Void) {
        var start = 0
        for part in parts {
            guard start < range.upperBound else { return }
            let end = start + part.readableBytes
            if range.lowerBound < end {
                let lower = max(range.lowerBound - start, 0)
                let upper = min(range.upperBound - start, part.readableBytes)
                part.withUnsafeReadableBytes { raw in body(UnsafeRawBufferPointer(rebasing: raw[lower..<upper])) }
            }
            start = end
        }
    }
}
