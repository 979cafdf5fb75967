import ForkliftEngine
import ForkliftImage
import Foundation
import Testing

/// The pipeline's tensors against the NumPy reference of the same steps (see
/// scripts/py/make_test_images.py for why that reference is comparable within 1e-3), and against
/// Pillow's own uint8 resize within about one pixel level.
@Suite struct PreprocessingTests {
    typealias Fixtures = ImageFixtures

    @Test func tensorsMatchTheNumPyReference() throws {
        let cases = try Fixtures.json("cases.json", as: [PreprocessingCase].self)
        #expect(cases.count >= 12)
        #expect(cases.contains { $0.denominator > 1 } && cases.contains { $0.config.layout == .nhwc && $0.config.channelOrder == .bgr })
        for (index, testCase) in cases.enumerated() {
            let pipeline = try ImagePipeline(preprocessing: testCase.config, dctScaling: testCase.dctScaling)
            let tensor = try pipeline.sample(jpeg: try Fixtures.bytes(testCase.image))
            let reference = try Fixtures.npy(testCase.tensor)
            #expect(reference.shape == pipeline.sampleShape, "case \(index)")
            let error = Self.maxDifference(tensor, reference)
            #expect(error <= 1e-3, "case \(index) (\(testCase.image), 1/\(testCase.denominator)): max |Forklift − NumPy| = \(error)")
        }
    }

    @Test func tensorsAreWithinOneLevelOfPillowsResize() throws {
        let cases = try Fixtures.json("cases.json", as: [PreprocessingCase].self)
        for (index, testCase) in cases.enumerated() {
            let pipeline = try ImagePipeline(preprocessing: testCase.config, dctScaling: testCase.dctScaling)
            let tensor = try pipeline.sample(jpeg: try Fixtures.bytes(testCase.image))
            let pillow = try Fixtures.npy(testCase.pillow)
            // Differences in pixel levels: the tensor's step per level is scale / std of the channel.
            let config = testCase.config
            let levels = (0..<3).map { Double(abs(config.std[$0] / config.scale)) }
            let plane = config.cropHeight * config.cropWidth
            var worst = 0.0
            var total = 0.0
            let values = pillow.pointer(as: Float.self)
            for offset in 0..<tensor.count {
                let channel = config.layout == .nchw ? offset / plane : offset % 3
                let difference = Double(abs(tensor[offset] - values[offset])) * levels[channel]
                worst = max(worst, difference)
                total += difference
            }
            #expect(worst <= 1.05, "case \(index) (\(testCase.image)): \(worst) levels from Pillow's resize")
            #expect(total / Double(tensor.count) <= 0.4, "case \(index): mean \(total / Double(tensor.count)) levels")
        }
    }

    @Test func dctScalingChangesLittle() throws {
        // The same photo through the DCT-scaled and the full decode: both antialias, so the tensors
        // differ only by the filters' small differences.
        let config = ImagePreprocessing(resizeShortSide: 256, crop: [224, 224], mean: [127, 127, 127], std: [128, 128, 128])
        let jpeg = try Fixtures.bytes("bench_2000x1500.jpg")
        let scaled = try ImagePipeline(preprocessing: config).sample(jpeg: jpeg)
        let full = try ImagePipeline(preprocessing: config, dctScaling: false).sample(jpeg: jpeg)
        let meanLevels = zip(scaled, full).map { Double(abs($0 - $1)) * 128 }.reduce(0, +) / Double(scaled.count)
        #expect(meanLevels < 2, "mean difference \(meanLevels) levels")
        #expect(scaled != full)
    }

    @Test func aPipelineIsReusedAcrossImageSizes() throws {
        let pipeline = try ImagePipeline(preprocessing: ImagePreprocessing(resizeShortSide: 256, crop: [224, 224]))
        let first = try pipeline.sample(jpeg: try Fixtures.bytes("photo_china.jpg"))
        _ = try pipeline.sample(jpeg: try Fixtures.bytes("bench_2000x1500.jpg"))
        _ = try pipeline.sample(jpeg: try Fixtures.bytes("tiny_1x1.jpg"))
        #expect(throws: ImageError.self) { _ = try pipeline.sample(jpeg: try Fixtures.bytes("truncated.jpg")) }
        #expect(try pipeline.sample(jpeg: try Fixtures.bytes("photo_china.jpg")) == first)
        #expect(pipeline.scratchBytes > 0 && pipeline.scratchBytes < 32 << 20)
    }

    @Test func writesIntoASliceOfABatchTensor() throws {
        let pipeline = try ImagePipeline(preprocessing: ImagePreprocessing(resizeShortSide: 20, crop: [16, 16]))
        let names = ["photo_china.jpg", "gray.jpg", "orientation_8.jpg"]
        var batch = [Float](repeating: .nan, count: names.count * pipeline.sampleCount)
        try batch.withUnsafeMutableBufferPointer { tensor in
            for (index, name) in names.enumerated() {
                let slice = UnsafeMutableBufferPointer(rebasing: tensor[(index * pipeline.sampleCount)...])
                try Fixtures.bytes(name).withUnsafeBytes { try pipeline.write(jpeg: $0, into: slice) }
            }
        }
        for (index, name) in names.enumerated() {
            let alone = try pipeline.sample(jpeg: try Fixtures.bytes(name))
            #expect(Array(batch[(index * pipeline.sampleCount)..<((index + 1) * pipeline.sampleCount)]) == alone)
        }
    }

    static func maxDifference(_ actual: [Float], _ expected: Tensor) -> Double {
        guard actual.count == expected.count else { return .infinity }
        let values = expected.pointer(as: Float.self)
        var worst = 0.0
        for index in 0..<actual.count { worst = max(worst, Double(abs(actual[index] - values[index]))) }
        return worst
    }
}
