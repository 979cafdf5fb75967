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
    /// Where each part starts in the body.
    private var starts: [Int] = []
    /// Bytes received so far.
    private(set) var count = 0

    /// Parts smaller than this are copied. Holding a slice of the channel's read buffer makes
    /// NIO allocate a new one for the next read, which costs more than copying a few kilobytes.
    static let copyLimit = 16 << 10

    mutating func append(_ part: ByteBuffer) {
        guard part.readableBytes > 0 else { return }
        starts.append(count)
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
        let index = part(containing: range.lowerBound)
        if index < parts.count, range.upperBound <= starts[index] + parts[index].readableBytes {
            let offset = range.lowerBound - starts[index]
            return try parts[index].withUnsafeReadableBytes { raw in
                Result { () throws(E) -> R in try body(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + range.count)])) }
            }.get()
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
        guard !range.isEmpty else { return }
        var index = part(containing: range.lowerBound)
        while index < parts.count, starts[index] < range.upperBound {
            let lower = max(range.lowerBound - starts[index], 0)
            let upper = min(range.upperBound - starts[index], parts[index].readableBytes)
            parts[index].withUnsafeReadableBytes { raw in body(UnsafeRawBufferPointer(rebasing: raw[lower..<upper])) }
            index += 1
        }
    }

    /// The index of the part holding byte `offset`, or `parts.count` past the end.
    private func part(containing offset: Int) -> Int {
        guard offset >= 0, offset < count else { return parts.count }
        // The last part that starts at or before the offset; the first starts at 0.
        var low = 0
        var high = starts.count
        while high - low > 1 {
            let middle = (low + high) / 2
            if starts[middle] <= offset { low = middle } else { high = middle }
        }
        return low
    }
}
