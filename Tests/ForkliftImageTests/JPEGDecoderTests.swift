import ForkliftImage
import ForkliftTestSupport
import Foundation
import Testing

/// The CJPEG shim against Pillow's decodes of the same files, and its answers to bad files.
@Suite struct JPEGDecoderTests {
    typealias Fixtures = ImageFixtures

    /// Compares the full-size decode of `name` with Pillow's (exif_transpose applied).
    private func expectMatchesPillow(_ name: String, denominator: Int = 1) throws {
        let jpeg = try Fixtures.bytes(name)
        let stem = String(name.dropLast(".jpg".count))
        let reference = try Fixtures.npy(denominator == 1 ? "\(stem).rgb.npy" : "\(stem).d\(denominator).rgb.npy")
        let size = try jpeg.withUnsafeBytes { bytes in try JPEGDecoder.decodedSize(of: bytes, scaleDenominator: denominator) }
        #expect(reference.shape == [size.height, size.width, 3], "\(name) at 1/\(denominator)")
        guard reference.shape == [size.height, size.width, 3] else { return }
        var rgb = [UInt8](repeating: 0, count: size.byteCount)
        try jpeg.withUnsafeBytes { bytes in
            try rgb.withUnsafeMutableBytes { output in _ = try JPEGDecoder.decode(bytes, scaleDenominator: denominator, into: output) }
        }
        let difference = Fixtures.meanAbsoluteDifference(rgb, reference.pointer(as: UInt8.self), count: size.byteCount)
        #expect(difference <= 1, "\(name) at 1/\(denominator): mean |Forklift − Pillow| = \(difference)")
    }

    @Test func fullSizeDecodesMatchPillow() throws {
        let list = try Fixtures.json("decodable.json", as: DecodableList.self)
        #expect(list.full.count >= 20)
        for name in list.full { try expectMatchesPillow(name) }
    }

    @Test func dctScaledDecodesMatchPillowsDraft() throws {
        let list = try Fixtures.json("decodable.json", as: DecodableList.self)
        for (name, denominators) in list.scaled.sorted(by: { $0.key < $1.key }) {
            for denominator in denominators { try expectMatchesPillow(name, denominator: denominator) }
        }
    }

    @Test func headerReportsSizeOrientationAndKind() throws {
        let photo = try Fixtures.bytes("photo_squirrel_cls.jpg").withUnsafeBytes { try JPEGDecoder.header(of: $0) }
        #expect(photo == JPEGHeader(width: 535, height: 426, components: 3, orientation: 1, isProgressive: false))
        for orientation in 1...8 {
            let header = try Fixtures.bytes("orientation_\(orientation).jpg").withUnsafeBytes { try JPEGDecoder.header(of: $0) }
            #expect(header.orientation == orientation)
            #expect(orientation >= 5 ? header.displayWidth == header.height : header.displayWidth == header.width)
        }
        let progressive = try Fixtures.bytes("progressive.jpg").withUnsafeBytes { try JPEGDecoder.header(of: $0) }
        #expect(progressive.isProgressive)
        #expect(try Fixtures.bytes("gray.jpg").withUnsafeBytes { try JPEGDecoder.header(of: $0) }.components == 1)
        #expect(try Fixtures.bytes("cmyk.jpg").withUnsafeBytes { try JPEGDecoder.header(of: $0) }.components == 4)
        #expect(try Fixtures.bytes("tiny_1x1.jpg").withUnsafeBytes { try JPEGDecoder.header(of: $0) }.width == 1)
    }

    @Test func badFilesGetTheirTypedError() throws {
        let expected = try Fixtures.json("bad.json", as: [String: String].self)
        #expect(expected.count >= 6)
        let pipeline = try ImagePipeline(preprocessing: ImagePreprocessing(resizeShortSide: 256, crop: [224, 224]))
        for (name, kind) in expected.sorted(by: { $0.key < $1.key }) {
            let jpeg = try Fixtures.bytes(name)
            do {
                _ = try pipeline.sample(jpeg: jpeg)
                Issue.record("\(name) decoded; expected \(kind)")
            } catch {
                #expect(Self.kind(of: error) == kind, "\(name): \(error)")
                #expect(!error.description.isEmpty)
            }
        }
    }

    @Test func truncatedAndCorruptDataNameLibjpegsMessage() throws {
        let truncated = try Fixtures.bytes("truncated.jpg")
        #expect(throws: ImageError.truncated("Premature end of JPEG file")) { try JPEGDecoder.decode(truncated) }
        let corrupt = try Fixtures.bytes("corrupt_data.jpg")
        #expect(throws: ImageError.corrupt("Corrupt JPEG data: premature end of data segment")) { try JPEGDecoder.decode(corrupt) }
        let png = try Fixtures.bytes("png_renamed.jpg")
        #expect(throws: ImageError.notJPEG("not a JPEG file: starts with 0x89 0x50")) { try JPEGDecoder.decode(png) }
        // Every prefix of a good file fails cleanly (no crash, no grey-filled success).
        let good = try Fixtures.bytes("photo_orange.jpg")
        for length in stride(from: 0, to: good.count - 2, by: max(good.count / 37, 1)) {
            #expect(throws: ImageError.self) { try JPEGDecoder.decode(Array(good.prefix(length))) }
        }
    }

    @Test func giantHeaderIsRefusedBeforeAnyAllocation() throws {
        let jpeg = try Fixtures.bytes("giant_header.jpg")
        #expect(jpeg.count < 128)
        let header = try jpeg.withUnsafeBytes { try JPEGDecoder.header(of: $0) }
        #expect(header.width == 65500 && header.height == 65500)
        let pipeline = try ImagePipeline(preprocessing: ImagePreprocessing(resizeShortSide: 256, crop: [224, 224]))
        #expect(throws: ImageError.tooManyPixels(width: 65500, height: 65500, limit: ImageLimits.defaultMaxPixels)) {
            _ = try pipeline.sample(jpeg: jpeg)
        }
        #expect(pipeline.scratchBytes == 0, "the pipeline allocated \(pipeline.scratchBytes) bytes for a refused image")
    }

    @Test func byteAndPixelLimitsAreConfigurable() throws {
        let jpeg = try Fixtures.bytes("photo_china.jpg")
        let config = ImagePreprocessing(resizeShortSide: 256, crop: [224, 224])
        let fewBytes = try ImagePipeline(preprocessing: config, limits: ImageLimits(maxBytes: 1000))
        #expect(throws: ImageError.tooManyBytes(size: jpeg.count, limit: 1000)) { _ = try fewBytes.sample(jpeg: jpeg) }
        let fewPixels = try ImagePipeline(preprocessing: config, limits: ImageLimits(maxPixels: 640 * 427 - 1))
        #expect(throws: ImageError.tooManyPixels(width: 640, height: 427, limit: 640 * 427 - 1)) { _ = try fewPixels.sample(jpeg: jpeg) }
        let exact = try ImagePipeline(preprocessing: config, limits: ImageLimits(maxPixels: 640 * 427))
        #expect(try exact.sample(jpeg: jpeg).count == 3 * 224 * 224)
    }

    @Test func aTooSmallOutputBufferIsAnError() throws {
        let jpeg = try Fixtures.bytes("photo_china.jpg")
        let pipeline = try ImagePipeline(preprocessing: ImagePreprocessing(crop: [8, 8]))
        var output = [Float](repeating: 0, count: 3 * 8 * 8 - 1)
        #expect(throws: ImageError.outputTooSmall(needed: 192, available: 191)) {
            try jpeg.withUnsafeBytes { bytes in try output.withUnsafeMutableBufferPointer { try pipeline.write(jpeg: bytes, into: $0) } }
        }
    }

    static func kind(of error: ImageError) -> String {
        switch error {
        case .tooManyBytes: "tooManyBytes"
        case .tooManyPixels: "tooManyPixels"
        case .notJPEG: "notJPEG"
        case .truncated: "truncated"
        case .corrupt: "corrupt"
        case .badConfig: "badConfig"
        case .outputTooSmall: "outputTooSmall"
        }
    }
}

/// Damaged variants of a real photo: each decodes or fails with an ImageError, and never crashes.
@Suite struct DamagedJPEGTests {
    @Test func mutatedBytesNeverCrashThePipeline() throws {
        let good = try ImageFixtures.bytes("photo_orange.jpg")
        let pipeline = try ImagePipeline(
            preprocessing: ImagePreprocessing(resizeShortSide: 64, crop: [56, 56]), limits: ImageLimits(maxPixels: 4_000_000))
        var random = SeededGenerator(seed: 42)
        var failures = 0
        for trial in 0..<300 {
            var bytes = good
            // Early trials hit the headers (first 600 bytes), later ones anywhere.
            let span = trial < 150 ? min(600, bytes.count) : bytes.count
            for _ in 0..<(1 + random.below(4)) { bytes[random.below(span)] = UInt8(truncatingIfNeeded: random.next()) }
            do {
                let sample = try pipeline.sample(jpeg: bytes)
                #expect(sample.allSatisfy { $0.isFinite }, "trial \(trial)")
            } catch {
                failures += 1
                #expect(!error.description.isEmpty)
            }
        }
        #expect(failures > 0, "no mutation was caught: the decoder is not checking anything")
    }
}
