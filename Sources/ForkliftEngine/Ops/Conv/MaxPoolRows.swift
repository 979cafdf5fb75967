/// MaxPool over float32 without Indices, for 1-D and 2-D windows: each output row is the
/// running maximum over the window's input rows and taps. Padding is handled by clamping each
/// tap's range of output columns (`Window.outputs`), so the inner loops have no branch and
/// vectorise; stride 1 and 2 get loops of their own so the vectoriser sees the stride.
enum MaxPoolRows {
    static func applies(_ w: Window) -> Bool {
        w.input[0] == 1 && w.output[0] == 1 && w.kernel[0] == 1 && w.padBegin[0] == 0
    }

    static func run(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, planes: Int, window w: Window) {
        let (inH, inW) = (w.input[1], w.input[2])
        let (outH, outW) = (w.output[1], w.output[2])
        let strideW = w.stride[2]
        let columns = (0..<w.kernel[2]).map { w.outputs(2, offset: $0 * w.dilation[2] - w.padBegin[2]) }
        Parallel.forEachChunk(count: planes, work: planes * w.outputVolume * w.kernelVolume) { range in
            columns.withUnsafeBufferPointer { columns in
                for p in range {
                    let plane = x + p * w.inputVolume
                    for oh in 0..<outH {
                        let out = y + (p * outH + oh) * outW
                        if strideW == 2, columns.count == 3, w.dilation[2] == 1 {
                            let first = plane + (oh * w.stride[1] - w.padBegin[1]) * inW
                            strided3(first, out, rows: w.taps(1, oh, low: 0, high: inH), rowStride: w.dilation[1] * inW, window: w)
                            continue
                        }
                        for o in 0..<outW { out[o] = -.infinity }
                        for kh in w.taps(1, oh, low: 0, high: inH) {
                            let ih = oh * w.stride[1] - w.padBegin[1] + kh * w.dilation[1]
                            for kw in 0..<columns.count {
                                let valid = columns[kw]
                                let (lo, hi) = (valid.lowerBound, valid.upperBound)
                                let src = plane + ih * inW + kw * w.dilation[2] - w.padBegin[2]
                                switch strideW {
                                case 1: for o in lo..<hi { out[o] = max(out[o], src[o]) }
                                case 2: for o in lo..<hi { out[o] = max(out[o], src[2 * o]) }
                                default: for o in lo..<hi { out[o] = max(out[o], src[o * strideW]) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The 3-wide stride-2 window of ResNet-style stems, each output's taps reduced in registers.
    @inline(__always)
    private static func strided3(
        _ first: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, rows: Range<Int>, rowStride: Int, window w: Window
    ) {
        let (inW, outW) = (w.input[2], w.output[2])
        let pad = w.padBegin[2]
        // Outputs whose taps 2o − pad + {0, 1, 2} all lie in the row.
        let lo = min(outW, (pad + 1) / 2)
        let hi = max(lo, min(outW, inW + pad - 3 >= 0 ? (inW + pad - 3) / 2 + 1 : 0))
        if rows.count == 3 {
            // The common interior case as one loop with no store-to-load chain, so it vectorises.
            let r0 = first + rows.lowerBound * rowStride - pad
            let r1 = r0 + rowStride
            let r2 = r1 + rowStride
            for o in lo..<hi {
                let i = 2 * o
                let m0 = max(max(r0[i], r0[i + 1]), r0[i + 2])
                let m1 = max(max(r1[i], r1[i + 1]), r1[i + 2])
                let m2 = max(max(r2[i], r2[i + 1]), r2[i + 2])
                out[o] = max(max(m0, m1), m2)
            }
        } else {
            for o in lo..<hi {
                var best = -Float.infinity
                for kh in rows {
                    let r = first + kh * rowStride - pad + 2 * o
                    best = max(best, max(max(r[0], r[1]), r[2]))
                }
                out[o] = best
            }
        }
        let o = hi
        edges(first, out, 0..<lo, rows: rows, rowStride: rowStride, inW: inW, pad: pad)
        edges(first, out, o..<outW, rows: rows, rowStride: rowStride, inW: inW, pad: pad)
    }

    private static func edges(
        _ first: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ outputs: Range<Int>, rows: Range<Int>, rowStride: Int,
        inW: Int, pad: Int
    ) {
        for o in outputs {
            var best = -Float.infinity
            let start = 2 * o - pad
            let taps = max(start, 0)..<max(start, 0, min(start + 3, inW))
            for kh in rows {
                let row = first + kh * rowStride
                for i in taps { best = max(best, row[i]) }
            }
            out[o] = best
        }
    }
}
