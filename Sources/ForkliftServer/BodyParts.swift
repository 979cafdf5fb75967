import ForkliftPool
import Foundation
import NIOCore
import NIOFoundationCompat

/// Bytes of a request body, read by range: a whole array, or the parts the pipeline delivered.
/// The decoder reads the JSON header and each binary tensor through it, so that a tensor is
/// copied once, from the received bytes into its own storage.
public protocol RequestBytes: Sendable {
    var count: Int { get }
    /// Calls `body` with the bytes in `range` in one piece.
    func withBytes<R, E: Error>(in range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R
    /// The bytes in `range`, copied once.
    func data(in range: Range<Int>) -> Data
    /// The bytes in `range` for a tensor, copied at most once.
    func tensorBytes(in range: Range<Int>) -> TensorBytes
}

extension Array: RequestBytes where Element == UInt8 {
    public func withBytes<R, E: Error>(in range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withUnsafeBytes { raw in Result { () throws(E) -> R in try body(UnsafeRawBufferPointer(rebasing: raw[range])) } }.get()
    }

    public func data(in range: Range<Int>) -> Data {
        // One memcpy; `Data(self[range])` would go through the generic sequence initializer.
        withUnsafeBytes { raw in raw.baseAddress.map { Data(bytes: $0 + range.lowerBound, count: range.count) } ?? Data() }
    }

    public func tensorBytes(in range: Range<Int>) -> TensorBytes { TensorBytes(data(in: range)) }
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
        let pieces = slices(of: range)
        if pieces.count == 1 {
            return try pieces[0].withUnsafeReadableBytes { raw in Result { () throws(E) -> R in try body(raw) } }.get()
        }
        let joined = [UInt8](unsafeUninitializedCapacity: range.count) { buffer, initialized in
            initialized = copy(range, to: UnsafeMutableRawBufferPointer(buffer))
        }
        return try joined.withBytes(in: 0..<joined.count, body)
    }

    func data(in range: Range<Int>) -> Data {
        var data = Data(capacity: range.count)
        for slice in slices(of: range) { slice.withUnsafeReadableBytes { data.append(contentsOf: $0) } }
        return data
    }

    /// Ranges of at least `copyLimit` bytes are not copied: their pieces share the parts' storage,
    /// which the parts already keep from NIO's reuse.
    func tensorBytes(in range: Range<Int>) -> TensorBytes {
        guard range.count >= Self.copyLimit else { return TensorBytes(data(in: range)) }
        return TensorBytes(pieces: slices(of: range).map { Data(buffer: $0, byteTransferStrategy: .noCopy) })
    }

    /// Copies `range` to `target`; returns the bytes copied.
    private func copy(_ range: Range<Int>, to target: UnsafeMutableRawBufferPointer) -> Int {
        var offset = 0
        for slice in slices(of: range) {
            slice.withUnsafeReadableBytes { piece in
                guard let base = target.baseAddress, let source = piece.baseAddress else { return }
                (base + offset).copyMemory(from: source, byteCount: piece.count)
            }
            offset += slice.readableBytes
        }
        return offset
    }

    /// The parts' bytes in `range`, in order, as slices that share the parts' storage.
    private func slices(of range: Range<Int>) -> [ByteBuffer] {
        var slices: [ByteBuffer] = []
        var start = 0
        for part in parts {
            guard start < range.upperBound else { break }
            let end = start + part.readableBytes
            if range.lowerBound < end {
                let lower = max(range.lowerBound - start, 0)
                let upper = min(range.upperBound - start, part.readableBytes)
                if let slice = part.getSlice(at: part.readerIndex + lower, length: upper - lower) { slices.append(slice) }
            }
            start = end
        }
        return slices
    }
}
