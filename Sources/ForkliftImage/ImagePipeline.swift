/// JPEG bytes → one sample of a model's input tensor, as the model's `image` config says:
/// decode (at a DCT scale when the target is much smaller), resize, centre crop, normalise, lay out.
///
/// A pipeline keeps its decode and resample buffers between calls, so it is not thread-safe: give
/// each worker thread its own.
public final class ImagePipeline {
    public let preprocessing: ImagePreprocessing
    public let limits: ImageLimits
    /// Whether to let libjpeg decode at 1/2, 1/4 or 1/8 size when that is still larger than the resize
    /// target (several times faster on large photos).
    public let dctScaling: Bool
    /// One sample's shape, e.g. [3, 224, 224].
    public let sampleShape: [Int]
    /// Floats in one sample.
    public let sampleCount: Int

    /// Decode buffers up to this size stay for the next image (a 2000×1500 photo at full size
    /// takes 9 MB); larger ones are freed after use.
    static let keptScratchBytes = 16 << 20

    private let normalization: Normalization
    private let decoded = ScratchBuffer<UInt8>()
    private let resampler = Resampler()

    public init(preprocessing: ImagePreprocessing, limits: ImageLimits = ImageLimits(), dctScaling: Bool = true) throws(ImageError) {
        try preprocessing.validate()
        self.preprocessing = preprocessing
        self.limits = limits
        self.dctScaling = dctScaling
        sampleShape = preprocessing.sampleShape
        sampleCount = sampleShape.reduce(1, *)
        normalization = Normalization(preprocessing)
    }

    /// Bytes of scratch memory the pipeline holds now (zero until an image passes the checks).
    public var scratchBytes: Int { decoded.byteCount + resampler.byteCount }

    /// Decodes `jpeg` and writes one sample (`sampleCount` floats) at the start of `output`, which
    /// is typically a slice of the batch tensor. Size limits are checked from the header before
    /// anything is allocated.
    public func write(jpeg: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<Float>) throws(ImageError) {
        guard output.count >= sampleCount, let target = output.baseAddress else {
            throw .outputTooSmall(needed: sampleCount, available: output.count)
        }
        let header = try limits.check(jpeg: jpeg)
        let geometry = ResizeGeometry(width: header.displayWidth, height: header.displayHeight, preprocessing: preprocessing)
        let denominator = dctScaling ? geometry.scaleDenominator(for: header) : 1
        let size = ResizeGeometry.decodedSize(of: header, denominator: denominator)
        let pixels = decoded.reserve(size.byteCount)
        defer { decoded.release(ifLargerThan: Self.keptScratchBytes) }
        let written = try JPEGDecoder.decode(
            jpeg, scaleDenominator: denominator, into: UnsafeMutableRawBufferPointer(start: pixels, count: size.byteCount))
        resampler.run(
            source: pixels, width: written.width, height: written.height, geometry: geometry, normalization: normalization,
            output: target)
    }

    /// Convenience for tools and tests: one sample as a new array.
    public func sample(jpeg: [UInt8]) throws(ImageError) -> [Float] {
        var values = [Float](repeating: 0, count: sampleCount)
        let outcome: Result<Void, ImageError> = jpeg.withUnsafeBytes { bytes in
            values.withUnsafeMutableBufferPointer { output in
                Result { () throws(ImageError) in try write(jpeg: bytes, into: output) }
            }
        }
        try outcome.get()
        return values
    }
}
