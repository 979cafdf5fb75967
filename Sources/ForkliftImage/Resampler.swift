/// The affine map each output channel gets after resampling: value × multiplier + offset, i.e.
/// (pixel × scale − mean) / std, with the channel order and layout of the model's input.
struct Normalization {
    /// Indexed by source channel (R, G, B), so one SIMD multiply-add normalises a pixel.
    let multiplier: SIMD4<Float>
    let offset: SIMD4<Float>
    /// Source channel of each output channel: [0, 1, 2] for RGB, [2, 1, 0] for BGR.
    let sourceChannel: (Int, Int, Int)
    let layout: ImagePreprocessing.Layout

    init(_ preprocessing: ImagePreprocessing) {
        let order = preprocessing.channelOrder == .rgb ? [0, 1, 2] : [2, 1, 0]
        var multiplier = SIMD4<Float>(repeating: 0)
        var offset = SIMD4<Float>(repeating: 0)
        for (channel, source) in order.enumerated() {
            multiplier[source] = preprocessing.scale / preprocessing.std[channel]
            offset[source] = -preprocessing.mean[channel] / preprocessing.std[channel]
        }
        self.multiplier = multiplier
        self.offset = offset
        sourceChannel = (order[0], order[1], order[2])
        layout = preprocessing.layout
    }
}

/// Separable antialiased bilinear resize of the crop window of an RGB8 image, straight into the
/// normalised float tensor. Pixels are SIMD4<Float> (R, G, B, unused) so that a tap is one
/// multiply-add. Pass 1 filters each needed source row horizontally (crop columns only); pass 2
/// filters those rows vertically for each crop row, then normalises and stores in the layout.
/// Loops run on raw pointers: no bounds checks, closures or generics per pixel.
final class Resampler {
    private let sourceRow = ScratchBuffer<SIMD4<Float>>()
    private let horizontal = ScratchBuffer<SIMD4<Float>>()
    private let outputRow = ScratchBuffer<SIMD4<Float>>()

    var byteCount: Int { sourceRow.byteCount + horizontal.byteCount + outputRow.byteCount }

    /// `source` is `width`×`height` RGB8, rows packed; `output` holds 3 × crop width × crop height floats.
    func run(
        source: UnsafePointer<UInt8>, width: Int, height: Int, geometry: ResizeGeometry, normalization: Normalization,
        output: UnsafeMutablePointer<Float>
    ) {
        let columns = FilterWeights(
            inputSize: width, outputSize: geometry.resizedWidth, range: geometry.left..<(geometry.left + geometry.cropWidth))
        let rows = FilterWeights(
            inputSize: height, outputSize: geometry.resizedHeight, range: geometry.top..<(geometry.top + geometry.cropHeight))
        let rowSpan = rows.inputSpan
        let cropWidth = geometry.cropWidth
        let filtered = horizontal.reserve(rowSpan.count * cropWidth)
        let floats = sourceRow.reserve(width)
        let columnSpan = columns.inputSpan
        columns.starts.withUnsafeBufferPointer { starts in
            columns.counts.withUnsafeBufferPointer { counts in
                columns.weights.withUnsafeBufferPointer { weights in
                    for (index, y) in rowSpan.enumerated() {
                        Self.widen(
                            source + (y * width + columnSpan.lowerBound) * 3, count: columnSpan.count, into: floats + columnSpan.lowerBound)
                        Self.filterRow(
                            floats, starts: starts, counts: counts, weights: weights, stride: columns.stride,
                            outputs: cropWidth, into: filtered + index * cropWidth)
                    }
                }
            }
        }
        let accumulator = outputRow.reserve(cropWidth)
        let plane = geometry.cropWidth * geometry.cropHeight
        rows.weights.withUnsafeBufferPointer { weights in
            guard let weightBase = weights.baseAddress else { return }
            for y in 0..<geometry.cropHeight {
                let first = filtered + (rows.starts[y] - rowSpan.lowerBound) * cropWidth
                Self.filterColumn(
                    first, rowStride: cropWidth, taps: rows.counts[y], weights: weightBase + y * rows.stride, outputs: cropWidth,
                    into: accumulator)
                Self.store(accumulator, count: cropWidth, normalization: normalization, output: output, row: y, plane: plane)
            }
        }
    }

    /// RGB8 → SIMD4<Float> for `count` pixels.
    @inline(__always)
    private static func widen(_ pixels: UnsafePointer<UInt8>, count: Int, into output: UnsafeMutablePointer<SIMD4<Float>>) {
        for x in 0..<count {
            let p = pixels + 3 * x
            output[x] = SIMD4<Float>(Float(p[0]), Float(p[1]), Float(p[2]), 0)
        }
    }

    @inline(__always)
    private static func filterRow(
        _ row: UnsafeMutablePointer<SIMD4<Float>>, starts: UnsafeBufferPointer<Int>, counts: UnsafeBufferPointer<Int>,
        weights: UnsafeBufferPointer<Float>, stride: Int, outputs: Int, into output: UnsafeMutablePointer<SIMD4<Float>>
    ) {
        guard let startBase = starts.baseAddress, let countBase = counts.baseAddress, let weightBase = weights.baseAddress else { return }
        for x in 0..<outputs {
            let taps = row + startBase[x]
            let w = weightBase + x * stride
            var sum = SIMD4<Float>(repeating: 0)
            for tap in 0..<countBase[x] { sum += taps[tap] * w[tap] }
            output[x] = sum
        }
    }

    @inline(__always)
    private static func filterColumn(
        _ first: UnsafeMutablePointer<SIMD4<Float>>, rowStride: Int, taps: Int, weights: UnsafePointer<Float>, outputs: Int,
        into output: UnsafeMutablePointer<SIMD4<Float>>
    ) {
        let w0 = weights[0]
        for x in 0..<outputs { output[x] = first[x] * w0 }
        var tap = 1
        while tap < taps {
            let row = first + tap * rowStride
            let w = weights[tap]
            for x in 0..<outputs { output[x] += row[x] * w }
            tap += 1
        }
    }

    @inline(__always)
    private static func store(
        _ pixels: UnsafeMutablePointer<SIMD4<Float>>, count: Int, normalization: Normalization, output: UnsafeMutablePointer<Float>,
        row: Int, plane: Int
    ) {
        let multiplier = normalization.multiplier
        let offset = normalization.offset
        for x in 0..<count { pixels[x] = pixels[x] * multiplier + offset }
        let (c0, c1, c2) = normalization.sourceChannel
        switch normalization.layout {
        case .nchw:
            let r0 = output + row * count
            let r1 = r0 + plane
            let r2 = r1 + plane
            for x in 0..<count {
                let p = pixels[x]
                r0[x] = p[c0]
                r1[x] = p[c1]
                r2[x] = p[c2]
            }
        case .nhwc:
            let out = output + row * count * 3
            for x in 0..<count {
                let p = pixels[x]
                out[3 * x] = p[c0]
                out[3 * x + 1] = p[c1]
                out[3 * x + 2] = p[c2]
            }
        }
    }
}
