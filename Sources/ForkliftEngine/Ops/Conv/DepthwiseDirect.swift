import CForkliftKernels

/// Stride-1 3×3 depthwise convolution on AVX-512 straight from the input planes, without the
/// zero-padded copies `DepthwisePlanar` makes: masked loads read the padding as zeros. The copy
/// cost about as much as the arithmetic on EfficientNet's 7×7 and 14×14 planes. (For 5×5 the
/// five column masks per block made it slower than copying; those stay with `DepthwisePlanar`.)
enum DepthwiseDirect {
    static func applies(_ w: Window) -> Bool {
        w.input[0] == 1 && w.kernel == SIMD3(1, 3, 3) && w.stride == SIMD3(1, 1, 1) && w.dilation == SIMD3(1, 1, 1)
    }

    static func run(
        x: UnsafeMutablePointer<Float>, weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>?,
        y: UnsafeMutablePointer<Float>, batch: Int, channels: Int, multiplier: Int, window w: Window, low: Float, high: Float
    ) {
        let work = batch * channels * multiplier * w.outputVolume * w.kernelVolume
        Parallel.forEachChunk(count: batch * channels, work: work) { range in
            for plane in range {
                let (n, c) = plane.quotientAndRemainder(dividingBy: channels)
                for f in 0..<multiplier {
                    let m = c * multiplier + f
                    // Without an activation the bounds are ±∞, which the kernel's clamp leaves as is.
                    forklift_depthwise_direct_avx512(
                        y + (n * channels * multiplier + m) * w.outputVolume, w.output[1], w.output[2], x + plane * w.inputVolume,
                        w.input[1], w.input[2], w.padBegin[1], w.padBegin[2], weight + m * w.kernelVolume, Int32(w.kernel[1]),
                        bias?[m] ?? 0, low, high)
                }
            }
        }
    }
}
