import ForkliftEngine
import Foundation
import Testing

@testable import ForkliftPool

@Suite struct RepositoryTests {
    let scratch: URL = FileManager.default.temporaryDirectory.appendingPathComponent("forklift-repo-\(UUID().uuidString)")

    private func write(_ text: String, _ path: String) throws {
        let url = scratch.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    @Test func layouts() throws {
        defer { try? FileManager.default.removeItem(at: scratch) }
        try write("x", "models/plain/model.onnx")
        try write(#"{"max_batch_size": 8, "labels": "labels.txt"}"#, "models/plain/config.json")
        try write("a\nb\n", "models/plain/labels.txt")
        try write("x", "models/triton/1/model.onnx")
        try write("x", "models/triton/3/model.onnx")
        try write("x", "models/triton/2/model.onnx")
        try write(#"{"max_batch_size": 4, "instance_count": 1}"#, "models/triton/config.json")
        try write("not a model", "models/empty/readme.txt")
        let entries = try ModelRepository.scan(scratch.appendingPathComponent("models"))
        #expect(entries.map(\.name) == ["plain", "triton"])
        #expect(entries[0].config.maxBatchSize == 8)
        #expect(entries[0].version == "1")
        #expect(try ModelRepository.labels(for: entries[0]) == ["a", "b"])
        #expect(entries[1].version == "3")
        #expect(entries[1].path.path.hasSuffix("triton/3/model.onnx"))
        #expect(entries[1].config.maxBatchSize == 4)
        #expect(entries[1].config.instanceCount == 1 && entries[0].config.instanceCount == nil)
        let single = try ModelRepository.scan(scratch.appendingPathComponent("models/plain/model.onnx"))
        #expect(single.map(\.name) == ["plain"], "a repository's model.onnx keeps its folder's name")
        #expect(single[0].config.maxBatchSize == 8)
        let versioned = try ModelRepository.scan(scratch.appendingPathComponent("models/triton/2/model.onnx"))
        #expect(versioned.map(\.name) == ["triton"] && versioned[0].version == "2")
        #expect(versioned[0].config.maxBatchSize == 4)
        try write("x", "loose/resnet.onnx")
        let loose = try ModelRepository.scan(scratch.appendingPathComponent("loose/resnet.onnx"))
        #expect(loose.map(\.name) == ["resnet"])
        let bundled = try ModelRepository.scan(PoolTestSupport.root.appendingPathComponent("models"))
        #expect(bundled.map(\.name) == ["digits", "efficientnet_lite0"], "scripts/fetch-models builds efficientnet_lite0")
        #expect(bundled.last?.config.image?.crop == [224, 224])
    }

    @Test func errorsNameThePath() throws {
        defer { try? FileManager.default.removeItem(at: scratch) }
        try write("nothing", "empty/readme.txt")
        #expect(throws: RepositoryError.noModels(path: scratch.appendingPathComponent("empty").path)) {
            try ModelRepository.scan(scratch.appendingPathComponent("empty"))
        }
        #expect(throws: RepositoryError.notFound(path: scratch.appendingPathComponent("absent").path)) {
            try ModelRepository.scan(scratch.appendingPathComponent("absent"))
        }
        try write("x", "none/m/model.onnx")
        try write(#"{"instance_count": 0}"#, "none/m/config.json")
        #expect(throws: RepositoryError.self) { try ModelRepository.scan(scratch.appendingPathComponent("none")) }
        do {
            _ = try ModelRepository.scan(scratch.appendingPathComponent("none"))
        } catch {
            #expect("\(error)".contains("none/m/config.json") && "\(error)".contains("instance_count must be ≥ 1"), "\(error)")
        }
        try write("x", "bad/m/model.onnx")
        try write(#"{"max_batch_size": "many"}"#, "bad/m/config.json")
        do {
            _ = try ModelRepository.scan(scratch.appendingPathComponent("bad"))
            Issue.record("a bad config must fail")
        } catch {
            #expect("\(error)".contains("bad/m/config.json") && "\(error)".contains("max_batch_size"), "\(error)")
        }
        try write("x", "nolabels/m/model.onnx")
        try write(#"{"labels": "missing.txt"}"#, "nolabels/m/config.json")
        do {
            _ = try ModelRepository.scan(scratch.appendingPathComponent("nolabels"))
            Issue.record("a missing labels file must fail")
        } catch {
            #expect("\(error)".contains("missing.txt"), "\(error)")
        }
    }
}

@Suite struct WireTests {
    private func roundTrip(_ frame: Frame) throws -> Frame { try parse(frame.encoded()) }

    /// A frame from its bytes: the header, then the payload it announces.
    private func parse(_ bytes: [UInt8], region: UnsafeRawBufferPointer? = nil) throws -> Frame {
        let header = try bytes.prefix(Frame.headerSize).withUnsafeBytes { try Frame.Header(parsing: $0) }
        return try bytes.dropFirst(Frame.headerSize).withUnsafeBytes { try Frame(header: header, payload: $0, region: region) }
    }

    @Test func framesRoundTrip() throws {
        var frame = Frame(kind: .batch, batchID: 42, model: 3, requests: 2)
        frame.pollMicroseconds = 500
        frame.items = [
            WireTensor(dtype: .float32, shape: [1, 2], data: Data(count: 8)),
            WireTensor(dtype: .int64, shape: [2], data: Data(repeating: 7, count: 16)),
            WireTensor(dtype: .bool, shape: [], data: Data([1])),
        ]
        #expect(try roundTrip(frame) == frame)
        var error = Frame(kind: .error, batchID: 9, model: 0, requests: 1)
        error.code = Frame.ErrorCode.badInput.rawValue
        error.message = "input 'x': wrong shape"
        #expect(try roundTrip(error) == error)
        var partial = Frame(kind: .result, batchID: 10, model: 1, requests: 3)
        partial.items = [WireTensor(dtype: .float32, shape: [1, 2], data: Data(count: 8))]
        partial.failures = [
            RequestFailure(request: 0, message: "image: not a JPEG"), RequestFailure(request: 2, message: "truncated ✂"),
        ]
        #expect(try roundTrip(partial) == partial)
    }

    @Test func largeItemsAreWrittenFromTheirOwnStorage() throws {
        var frame = Frame(kind: .batch, batchID: 5, model: 0, requests: 3)
        let large = Data((0..<(Frame.directItemBytes + 3)).map { UInt8(truncatingIfNeeded: $0) })
        frame.items = [
            WireTensor(dtype: .uint8, shape: [1, 3], data: Data([1, 2, 3])),
            WireTensor(dtype: .uint8, shape: [1, large.count], data: large),
            WireTensor(dtype: .float32, shape: [1, 1], data: Data(count: 4)),
        ]
        let segments = frame.segments()
        let direct = segments.compactMap { if case .data(let data) = $0 { data } else { nil } }
        #expect(direct == [large], "only the large item is a segment of its own")
        #expect(joined(segments) == frame.encoded())
        #expect(try roundTrip(frame) == frame)
    }

    @Test func framesReadOverASocketMaySharePayload() throws {
        var frame = Frame(kind: .batch, batchID: 8, model: 1, requests: 2)
        frame.items = [
            WireTensor(dtype: .uint8, shape: [1, 5], data: Data([9, 8, 7, 6, 5])),
            WireTensor(dtype: .float32, shape: [1, 2], data: Data((0..<8).map { UInt8($0) })),
        ]
        let (writer, reader) = try SocketIO.socketPair()
        defer {
            SocketIO.close(writer)
            SocketIO.close(reader)
        }
        for sharing in [false, true] {
            try FrameIO.write(frame, to: writer)
            #expect(try FrameIO.read(from: reader, sharingPayload: sharing) == frame, "sharing \(sharing)")
        }
    }

    @Test func failuresOutOfRangeAreRejected() throws {
        var frame = Frame(kind: .result, batchID: 1, model: 0, requests: 2)
        frame.failures = [RequestFailure(request: 5, message: "x")]
        #expect(throws: FrameError.self) { try roundTrip(frame) }
        frame.failures = [RequestFailure(request: 1, message: "x"), RequestFailure(request: 1, message: "y")]
        #expect(throws: FrameError.self) { try roundTrip(frame) }
        frame.failures = [RequestFailure(request: 0, message: "x"), RequestFailure(request: 1, message: "y")]
        var bytes = frame.encoded()
        bytes.removeLast()
        let header = try bytes.prefix(Frame.headerSize).withUnsafeBytes { try Frame.Header(parsing: $0) }
        #expect(throws: FrameError.self) {
            try bytes.dropFirst(Frame.headerSize).withUnsafeBytes { try Frame(header: header, payload: $0) }
        }
    }

    @Test func badFramesAreRejectedBeforeAllocating() throws {
        var frame = Frame(kind: .result, batchID: 1, model: 0, requests: 1)
        frame.items = [WireTensor(dtype: .float32, shape: [4], data: Data(count: 16))]
        let good = frame.encoded()
        var badMagic = good
        badMagic[0] ^= 0xFF
        #expect(throws: FrameError.self) { try parse(badMagic) }
        var badKind = good
        badKind[4] = 9
        #expect(throws: FrameError.self) { try parse(badKind) }
        var huge = good
        for index in 40..<48 { huge[index] = 0xFF }  // payload length 2^64 - 1
        #expect(throws: FrameError.self) { try parse(huge) }
        var shapeMismatch = good
        shapeMismatch[Frame.headerSize + 8] = 5  // dims [5] for 16 bytes of float32
        #expect(throws: FrameError.self) { try parse(shapeMismatch) }
        var pollInResult = good
        pollInResult[6] = 1  // only batch frames tell the worker to poll
        #expect(throws: FrameError.self) { try parse(pollInResult) }
        var bigDim = good
        for index in (Frame.headerSize + 8)..<(Frame.headerSize + 16) { bigDim[index] = 0xFF }
        #expect(throws: FrameError.self) { try parse(bigDim) }
        #expect(throws: FrameError.self) { try parse(Array(good.dropLast())) }
    }

    private func largeItemFrame() -> (Frame, Data) {
        var frame = Frame(kind: .batch, batchID: 6, model: 0, requests: 2)
        let large = Data((0..<(Frame.directItemBytes + 5)).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        frame.items = [
            WireTensor(dtype: .uint8, shape: [1, 3], data: Data([1, 2, 3])),
            WireTensor(dtype: .uint8, shape: [1, large.count], data: large),
            WireTensor(dtype: .uint8, shape: [1, large.count], data: Data(large.reversed())),
        ]
        return (frame, large)
    }

    private func joined(_ segments: [Frame.Segment]) -> [UInt8] {
        segments.reduce(into: []) { out, segment in segment.withBytes { out.append(contentsOf: $0) } }
    }

    @Test func largeItemsTravelInTheSharedRegion() throws {
        let (frame, large) = largeItemFrame()
        let (region, fd) = try SharedRegion.create(size: 1 << 20)
        SocketIO.close(fd)
        let segments = frame.segments(placingIn: RegionWriter(region: region))
        #expect(segments.allSatisfy { if case .bytes = $0 { true } else { false } }, "no item is written through the socket")
        let bytes = joined(segments)
        #expect(bytes.count < 2 * large.count, "the frame carries offsets, not the large items")
        let parsed = try parse(bytes, region: region.bytes)
        #expect(parsed == frame)
        #expect(parsed.items[1].data.withUnsafeBytes { $0.baseAddress } == UnsafeRawPointer(region.base), "read in place")
        #expect(throws: FrameError.self, "an item in a region, with none sent") { try parse(bytes, region: nil) }
        let short = UnsafeRawBufferPointer(rebasing: region.bytes[0..<(large.count + 100)])
        #expect(throws: FrameError.self, "the second item lies past a shorter region") { try parse(bytes, region: short) }
    }

    @Test func itemsThatDoNotFitTheRegionGoThroughTheSocket() throws {
        let (frame, large) = largeItemFrame()
        let (region, fd) = try SharedRegion.create(size: large.count + 10)
        SocketIO.close(fd)
        #expect(RegionWriter.bytesNeeded(for: frame.items) > region.size)
        let segments = frame.segments(placingIn: RegionWriter(region: region))
        let direct = segments.compactMap { if case .data(let data) = $0 { data } else { nil } }
        #expect(direct == [Data(large.reversed())], "the first large item fits, the second does not")
        #expect(try parse(joined(segments), region: region.bytes) == frame)
    }

    /// Items whose bytes are in pieces (a large binary input as the body's reads left it) encode
    /// exactly like the same items in one piece, whether they go inline, to the region or
    /// through the socket.
    @Test func itemsInPiecesEncodeLikeWholeItems() throws {
        let (whole, _) = largeItemFrame()
        var pieced = whole
        pieced.items = whole.items.map { item in
            let data = item.data
            let cuts = [0, data.count / 3, data.count / 3, data.count - 1, data.count]
            let pieces = zip(cuts, cuts.dropFirst()).map { data.subdata(in: $0..<$1) }
            return WireTensor(dtype: item.dtype, shape: item.shape, bytes: TensorBytes(pieces: pieces))
        }
        #expect(pieced.items[1].bytes.pieces.count == 3, "the empty piece is dropped")
        #expect(pieced == whole, "tensors compare by their bytes, however split")
        #expect(pieced.encoded() == whole.encoded())
        for regionSize in [1 << 20, whole.items[1].bytes.count + 10] {
            let (region, fd) = try SharedRegion.create(size: regionSize)
            SocketIO.close(fd)
            let segments = pieced.segments(placingIn: RegionWriter(region: region))
            #expect(try parse(joined(segments), region: region.bytes) == whole, "region of \(regionSize) bytes")
        }
        let direct = pieced.segments().compactMap { if case .data(let data) = $0 { data } else { nil } }
        #expect(direct == pieced.items[1].bytes.pieces + pieced.items[2].bytes.pieces, "large pieces are written as they are")
    }

    @Test func aRegionAndItsFDTravelOverTheSocket() throws {
        let (writer, reader) = try SocketIO.socketPair()
        defer {
            SocketIO.close(writer)
            SocketIO.close(reader)
        }
        let size = 1 << 20
        let (region, fd) = try SharedRegion.create(size: size)
        defer { SocketIO.close(fd) }
        let pattern = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        (region.base + 1000).copyMemory(from: pattern, byteCount: pattern.count)
        var announcement = Frame(kind: .region, batchID: 0, model: 0, requests: 0)
        announcement.regionSize = size
        announcement.attachedFD = fd
        try FrameIO.write(announcement, to: writer)
        let received = try FrameIO.read(from: reader, receivingFDs: true)
        #expect(received.kind == .region && received.regionSize == size)
        let attached = try #require(received.attachedFD)
        #expect(attached != fd)
        let mapped = try SharedRegion.attach(attached, size: size)
        #expect(Array(mapped.bytes[1000..<(1000 + pattern.count)]) == pattern, "the worker sees what the server wrote")

        // A size larger than the memory behind the fd would fault on access: refused.
        try FrameIO.write(announcement, to: writer)
        let again = try #require(try FrameIO.read(from: reader, receivingFDs: true).attachedFD)
        #expect(throws: SocketError.self) { try SharedRegion.attach(again, size: 2 * size) }
    }
}
