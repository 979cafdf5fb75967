import Foundation

/// Depthwise convolution (one input channel per group, `multiplier` filters each): a direct loop
/// that accumulates whole output rows per kernel tap. Padding is handled by clamping each tap's
/// range of output columns, so the inner loop has no branch and vectorises. `wide` false keeps
/// the phase-plane path to its AVX2 loops (what CPUs without AVX-512 run; tests cover them so).
enum Depthwise {
    static func run(
        x: UnsafeMutablePointer<Float>, weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>?,
        y: UnsafeMutablePointer<Float>, batch: Int, channels: Int, multiplier: Int, window w: Window, activation: Activation?,
        wide: Bool = CPUFeatures.hasAVX512
    ) {
        let filters = channels * multiplier
        let planes = batch * filters
        let columns = (0..<w.kernel[2]).map { w.outputs(2, offset: $0 * w.dilation[2] - w.padBegin[2]) }
        let (low, high) = activation?.bounds ?? (-Float.infinity, Float.infinity)
        let clamp = activation != nil
        if wide, DepthwiseDirect.applies(w) {
            DepthwiseDirect.run(
                x: x, weight: weight, bias: bias, y: y, batch: batch, channels: channels, multiplier: multiplier, window: w, low: low,
                high: high)
            return
        }
        if DepthwisePlanar.applies(w) {
            DepthwisePlanar(w).run(
                x: x, weight: weight, bias: bias, y: y, batch: batch, channels: channels, multiplier: multiplier, low: low, high: high,
                clamp: clamp, wide: wide)
            return
        }
        let work = planes * w.outputVolume * w.kernelVolume
        Parallel.forEachChunk(count: planes, work: work) { range in
            columns.withUnsafeBufferPointer { columns in
                for p in range {
                    let n = p / filters
                    let m = p % filters
                    let c = m / multiplier
                    plane(
                        x: x + (n * channels + c) * w.inputVolume, weight: weight + m * w.kernelVolume, bias: bias?[m] ?? 0,
                        y: y + p * w.outputVolume, window: w, columns: columns, low: low, high: high, clamp: clamp)
                }
            }
        }
    }

    private static func plane(
        x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: Float, y: UnsafeMutablePointer<Float>, window w: Window,
        columns: UnsafeBufferPointer<Range<Int>>, low: Float, high: Float, clamp: Bool
    ) {
        let (inD, inH, inW) = (w.input[0], w.input[1], w.input[2])
        let (outD, outH, outW) = (w.output[0], w.output[1], w.output[2])
        let (kH, kW) = (w.kernel[1], w.kernel[2])
        let strideW = w.stride[2]
        for od in 0..<outD {
            let depthTaps = w.taps(0, od, low: 0, high: inD)
            for oh in 0..<outH {
                let row = y + (od * outH + oh) * outW
                row.update(repeating: bias, count: outW)
                for kd in depthTaps {
                    let id = od * w.stride[0] - w.padBegin[0] + kd * w.dilation[0]
                    for kh in w.taps(1, oh, low: 0, high: inH) {
                        let ih = oh * w.stride[1] - w.padBegin[1] + kh * w.dilation[1]
                        let source = x + (id * inH + ih) * inW
                        let taps = weight + (kd * kH + kh) * kW
                        for kw in 0..<kW {
                            let tap = taps[kw]
                            let src = source + (kw * w.dilation[2] - w.padBegin[2])
                            let range = columns[kw]
                            if strideW == 1 {
                                accumulate(row, src, tap, range.lowerBound, range.upperBound)
                            } else {
                                accumulateStrided(row, src, tap, range.lowerBound, range.upperBound, strideW)
                            }
                        }
                    }
                }
                if clamp {
                    for o in 0..<outW { row[o] = min(max(row[o], low), high) }
                }
            }
        }
    }

    @inline(__always)
    private static func accumulate(_ row: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ tap: Float, _ lo: Int, _ hi: Int) {
        var o = lo
        while o < hi {
            row[o] += tap * src[o]
            o += 1
        }
    }

    @inline(__always)
    private static func accumulateStrided(
        _ row: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ tap: Float, _ lo: Int, _ hi: Int, _ stride: Int
    ) {
        var o = lo
        while o < hi {
            row[o] += tap * src[o * stride]
            o += 1
        }
    }
}
