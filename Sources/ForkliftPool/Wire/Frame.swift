import ForkliftEngine
import Foundation

/// A frame between the server and a worker (DESIGN.md, Wire protocol). Fixed 48-byte header,
/// little-endian, then `payloadLength` bytes:
///
///     magic u32 | kind u8 | code u8 | poll µs u16 | batch id u64 | model u32 | requests u32 |
///     items u32 | failures u32 | compute ns u64 | payload length u64
///
/// A batch frame carries `requests × inputs` tensor items, request-major; a result frame carries
/// `outputs` tensor items for each request that did not fail, already split per request, then its
/// failures (request index u32, message length u32, UTF-8 message), for requests whose own input
/// was bad (an image that does not decode) while the rest of the batch ran; an error frame carries
/// a UTF-8 message as its payload and no items.
///
/// A tensor item is dtype u32, rank u32, the dimensions (u64 each), its byte length u64, then its
/// bytes. When the rank's top bit is set, the bytes are in the worker's shared region instead, and
/// a u64 offset into it follows the length. A region frame, sent with the region's memfd attached
/// to its first byte, carries the region's size (u64) as its payload; the worker maps it and
/// reads later batches' flagged items from it.
///
/// A batch frame's poll field tells the worker how long to poll its socket for the next frame
/// after replying, before it sleeps (`--busy-poll`); it is zero in every other kind.
struct Frame: Sendable, Equatable {
    enum Kind: UInt8, Sendable {
        case batch = 1
        case result = 2
        case error = 3
        case region = 4
    }

    /// Why an error frame was sent: the server maps these to `PoolError`s.
    enum ErrorCode: UInt8, Sendable {
        case badInput = 1
        case internalError = 2
    }

    static let magic: UInt32 = 0x464B_4C31  // "FKL1"
    static let headerSize = 48
    /// Largest payload accepted from a peer: a length past this is a bug, not a big batch.
    static let maxPayload = 1 << 30
    static let maxRank = 16
    static let maxItems = 1 << 20
    /// Set in an item's rank field when its bytes are in the shared region.
    static let inRegionFlag: UInt32 = 1 << 31

    var kind: Kind
    var code: UInt8 = 0
    /// Batch frames: microseconds the worker polls for the next frame after its reply.
    var pollMicroseconds: UInt16 = 0
    var batchID: UInt64
    var model: UInt32
    var requests: UInt32
    var computeNanoseconds: UInt64 = 0
    var items: [WireTensor] = []
    /// Result frames: requests of the batch that failed alone, by index, with the reason.
    var failures: [RequestFailure] = []
    var message: String = ""
    /// Region frames: the size of the region whose fd travels with the frame.
    var regionSize = 0
    /// An fd sent with the frame's first byte (SCM_RIGHTS), or received with it.
    var attachedFD: Int32?
}

/// One request of a batch that could not run, while the others did.
struct RequestFailure: Sendable, Equatable {
    var request: UInt32
    var message: String
}

/// A frame that failed its checks: the peer is broken, so the connection is dropped.
struct FrameError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension Frame {
    /// The header fields, parsed and checked before any payload is read or allocated.
    struct Header: Sendable {
        var kind: Kind
        var code: UInt8
        var pollMicroseconds: UInt16
        var batchID: UInt64
        var model: UInt32
        var requests: UInt32
        var itemCount: UInt32
        var failureCount: UInt32
        var computeNanoseconds: UInt64
        var payloadLength: Int

        init(parsing bytes: UnsafeRawBufferPointer) throws(FrameError) {
            guard bytes.count == Frame.headerSize else { throw FrameError("short header (\(bytes.count) bytes)") }
            var reader = ByteReader(bytes)
            let magic = reader.u32()
            guard magic == Frame.magic else { throw FrameError("bad magic 0x\(String(magic, radix: 16))") }
            let rawKind = reader.u8()
            guard let kind = Kind(rawValue: rawKind) else { throw FrameError("unknown frame kind \(rawKind)") }
            self.kind = kind
            code = reader.u8()
            pollMicroseconds = reader.u16()
            guard pollMicroseconds == 0 || kind == .batch else { throw FrameError("poll time in a \(kind) frame") }
            batchID = reader.u64()
            model = reader.u32()
            requests = reader.u32()
            itemCount = reader.u32()
            failureCount = reader.u32()
            computeNanoseconds = reader.u64()
            let length = reader.u64()
            guard length <= UInt64(Frame.maxPayload) else {
                throw FrameError("payload of \(length) bytes exceeds the \(Frame.maxPayload)-byte limit")
            }
            guard itemCount <= UInt32(Frame.maxItems), requests <= UInt32(Frame.maxItems) else {
                throw FrameError("\(itemCount) items / \(requests) requests exceed the limit")
            }
            guard failureCount <= requests, failureCount == 0 || kind == .result else {
                throw FrameError("\(failureCount) failures in a \(kind) frame of \(requests) requests")
            }
            guard kind != .region || (length == 8 && itemCount == 0) else {
                throw FrameError("region frame with \(length) payload bytes and \(itemCount) items")
            }
            payloadLength = Int(length)
        }
    }

    /// A run of the frame's bytes: gathered header and small items, or one large item's data
    /// as it is, so that writing it copies nothing.
    enum Segment {
        case bytes([UInt8])
        case data(Data)

        /// The segment's bytes, whichever storage holds them.
        func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
            switch self {
            case .bytes(let bytes): try bytes.withBytes(body)
            case .data(let data): try data.withBytes(body)
            }
        }
    }

    /// Items at least this large are written from their own storage rather than copied into the
    /// frame: a ResNet-18 input is 600 KB, and its copy into the frame cost about 60 µs.
    static let directItemBytes = 64 << 10

    /// The whole frame as bytes.
    func encoded() -> [UInt8] {
        var out: [UInt8] = []
        for segment in segments(directItemBytes: .max) { segment.withBytes { out.append(contentsOf: $0) } }
        return out
    }

    /// The frame's bytes in order, with each item of `directItemBytes` or more as a segment of
    /// its own, or copied into the shared region when `region` is given and has room.
    func segments(directItemBytes: Int = Frame.directItemBytes, placingIn region: RegionWriter? = nil) -> [Segment] {
        let placed: [UInt64?] = items.map { item in
            guard let region, item.bytes.count >= directItemBytes else { return nil }
            return region.place(item.bytes)
        }
        var payloadLength = 0
        switch kind {
        case .error:
            payloadLength = message.utf8.count
        case .region:
            payloadLength = 8
        case .batch, .result:
            for (item, offset) in zip(items, placed) {
                payloadLength += 8 + 8 * item.shape.count + 8 + (offset == nil ? item.bytes.count : 8)
            }
            for failure in failures { payloadLength += 8 + failure.message.utf8.count }
        }
        var segments: [Segment] = []
        var out: [UInt8] = []
        out.reserveCapacity(Frame.headerSize + min(payloadLength, directItemBytes))
        out.appendLE(Frame.magic)
        out.append(kind.rawValue)
        out.append(code)
        out.appendLE(kind == .batch ? pollMicroseconds : 0)
        out.appendLE(batchID)
        out.appendLE(model)
        out.appendLE(requests)
        let hasItems = kind == .batch || kind == .result
        out.appendLE(UInt32(hasItems ? items.count : 0))
        out.appendLE(UInt32(hasItems ? failures.count : 0))
        out.appendLE(computeNanoseconds)
        out.appendLE(UInt64(payloadLength))
        switch kind {
        case .error:
            out.append(contentsOf: message.utf8)
            return [.bytes(out)]
        case .region:
            out.appendLE(UInt64(regionSize))
            return [.bytes(out)]
        case .batch, .result:
            break
        }
        for (item, offset) in zip(items, placed) {
            out.appendLE(UInt32(bitPattern: item.dtype.rawValue))
            out.appendLE(UInt32(item.shape.count) | (offset == nil ? 0 : Frame.inRegionFlag))
            for dim in item.shape { out.appendLE(UInt64(max(dim, 0))) }
            out.appendLE(UInt64(item.bytes.count))
            if let offset {
                out.appendLE(offset)
            } else if item.bytes.count >= directItemBytes {
                segments.append(.bytes(out))
                segments += item.bytes.pieces.map { .data($0) }
                out = []
            } else {
                // Through the raw bytes: appending a `Data` as a sequence copies byte by byte.
                for piece in item.bytes.pieces { piece.withUnsafeBytes { out.append(contentsOf: $0) } }
            }
        }
        for failure in failures {
            out.appendLE(failure.request)
            out.appendLE(UInt32(failure.message.utf8.count))
            out.append(contentsOf: failure.message.utf8)
        }
        if !out.isEmpty { segments.append(.bytes(out)) }
        return segments
    }

    /// Parses a payload that `header` announced. Every length is checked against what is left.
    /// Items copy their bytes out of `payload`, unless `storage` (the `Data` that `payload` points
    /// into) is given: then they are slices of it, which may be unaligned for their element type.
    /// Items flagged as in the shared region point into `region`, which must outlive them.
    init(header: Header, payload: UnsafeRawBufferPointer, storage: Data? = nil, region: UnsafeRawBufferPointer? = nil)
        throws(FrameError)
    {
        kind = header.kind
        code = header.code
        pollMicroseconds = header.pollMicroseconds
        batchID = header.batchID
        model = header.model
        requests = header.requests
        computeNanoseconds = header.computeNanoseconds
        guard payload.count == header.payloadLength else { throw FrameError("payload length mismatch") }
        if kind == .error {
            guard header.itemCount == 0 else { throw FrameError("error frame with \(header.itemCount) items") }
            message = String(decoding: payload, as: UTF8.self)
            return
        }
        if kind == .region {
            regionSize = Int(clamping: payload.loadUnaligned(as: UInt64.self).littleEndian)
            return
        }
        var reader = ByteReader(payload)
        var parsed: [WireTensor] = []
        parsed.reserveCapacity(Int(header.itemCount))
        for index in 0..<Int(header.itemCount) {
            guard reader.remaining >= 8 else { throw FrameError("item \(index): truncated header") }
            let rawType = Int32(bitPattern: reader.u32())
            guard let dtype = DType(rawValue: rawType) else { throw FrameError("item \(index): unknown dtype \(rawType)") }
            let rankField = reader.u32()
            let inRegion = rankField & Frame.inRegionFlag != 0
            let rank = Int(rankField & ~Frame.inRegionFlag)
            guard rank <= Frame.maxRank else { throw FrameError("item \(index): rank \(rank) exceeds \(Frame.maxRank)") }
            guard reader.remaining >= 8 * rank + 8 else { throw FrameError("item \(index): truncated shape") }
            var shape: [Int] = []
            for _ in 0..<rank {
                let dim = reader.u64()
                guard dim <= UInt64(Frame.maxPayload) else { throw FrameError("item \(index): dimension \(dim) too large") }
                shape.append(Int(dim))
            }
            let byteLength = reader.u64()
            let expected = Shape.elementCount(shape).map { $0.multipliedReportingOverflow(by: dtype.byteSize) }
            guard let expected, !expected.overflow, UInt64(expected.partialValue) == byteLength else {
                throw FrameError("item \(index): \(byteLength) bytes do not match shape \(Shape.describe(shape)) of \(dtype)")
            }
            let bytes: Data
            if inRegion {
                guard reader.remaining >= 8 else { throw FrameError("item \(index): truncated region offset") }
                let offset = reader.u64()
                guard let region else { throw FrameError("item \(index): in a shared region, but none was sent") }
                guard offset <= UInt64(region.count), byteLength <= UInt64(region.count) - offset else {
                    throw FrameError("item \(index): \(byteLength) bytes at offset \(offset) pass the \(region.count)-byte region")
                }
                bytes = Self.view(of: region, from: Int(offset), count: Int(byteLength))
            } else if byteLength > UInt64(reader.remaining) {
                throw FrameError("item \(index): \(byteLength) bytes announced, \(reader.remaining) left")
            } else if let storage {
                let range = reader.skip(Int(byteLength))
                bytes = storage[(storage.startIndex + range.lowerBound)..<(storage.startIndex + range.upperBound)]
            } else {
                bytes = reader.bytes(Int(byteLength))
            }
            parsed.append(WireTensor(dtype: dtype, shape: shape, data: bytes))
        }
        var seen = Set<UInt32>()
        for index in 0..<Int(header.failureCount) {
            guard reader.remaining >= 8 else { throw FrameError("failure \(index): truncated") }
            let request = reader.u32()
            let length = Int(reader.u32())
            guard request < header.requests, seen.insert(request).inserted else {
                throw FrameError("failure \(index): request \(request) is out of range or repeated")
            }
            guard length <= reader.remaining else {
                throw FrameError("failure \(index): \(length) bytes announced, \(reader.remaining) left")
            }
            failures.append(RequestFailure(request: request, message: String(decoding: reader.bytes(length), as: UTF8.self)))
        }
        guard reader.remaining == 0 else { throw FrameError("\(reader.remaining) trailing bytes after the items") }
        items = parsed
    }

    /// Bytes of the region as `Data` that neither copies nor frees them.
    private static func view(of region: UnsafeRawBufferPointer, from offset: Int, count: Int) -> Data {
        guard count > 0, let base = region.baseAddress else { return Data() }
        return Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base + offset), count: count, deallocator: .none)
    }
}

/// Little-endian cursor over bytes whose bounds the caller has checked.
struct ByteReader {
    private let bytes: UnsafeRawBufferPointer
    private var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func u8() -> UInt8 { take(UInt8.self) }
    mutating func u16() -> UInt16 { UInt16(littleEndian: take(UInt16.self)) }
    mutating func u32() -> UInt32 { UInt32(littleEndian: take(UInt32.self)) }
    mutating func u64() -> UInt64 { UInt64(littleEndian: take(UInt64.self)) }

    mutating func bytes(_ count: Int) -> Data {
        let range = skip(count)
        guard count > 0, let base = bytes.baseAddress else { return Data() }
        return Data(bytes: base + range.lowerBound, count: count)
    }

    /// Passes over the next `count` bytes; returns where they are.
    mutating func skip(_ count: Int) -> Range<Int> {
        precondition(count <= remaining)
        defer { offset += count }
        return offset..<(offset + count)
    }

    private mutating func take<T: FixedWidthInteger>(_: T.Type) -> T {
        precondition(MemoryLayout<T>.size <= remaining, "ByteReader read past a checked bound")
        defer { offset += MemoryLayout<T>.size }
        return bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
    }
}

extension Array where Element == UInt8 {
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    mutating func withMutableBytes<R, E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withUnsafeMutableBytes { raw in Result { () throws(E) -> R in try body(raw) } }.get()
    }
}

extension ContiguousBytes {
    /// `withUnsafeBytes` with a typed error: the standard one only rethrows `any Error`.
    func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try withUnsafeBytes { raw in Result { () throws(E) -> R in try body(raw) } }.get()
    }
}
