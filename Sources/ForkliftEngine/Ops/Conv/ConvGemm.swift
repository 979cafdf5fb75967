/// The im2col + GEMM path of Conv, worked in chunks of output rows so that the column matrix
/// stays in the L2 cache between im2col writing it and sgemm packing it. When one image has
/// few output positions (the deep layers of a ResNet), a chunk spans several images instead,
/// so that sgemm packs the (large) weight matrix once for several images rather than once each
/// (and packed filters, `ConvFilters`, stream from memory once per chunk).
struct ConvGemm {
    let window: Window
    let batch: Int
    let inChannels: Int
    let outChannels: Int
    let group: Int

    /// Floats of column matrix per chunk: about half the L2 cache of the machines we target.
    static let chunkBudget = 1 << 18
    /// Fewest columns per sgemm call worth aiming for: below this, packing the weights and the
    /// kernel's edge handling dominate.
    static let minColumns = 384

    func run(
        x: UnsafeMutablePointer<Float>, weight: UnsafeMutablePointer<Float>, packed: ConvFilters?,
        bias: UnsafeMutablePointer<Float>?, y: UnsafeMutablePointer<Float>, activation: Activation?
    ) throws(KernelError) {
        let w = window
        let groupIn = inChannels / group
        let groupOut = outChannels / group
        let k = groupIn * w.kernelVolume
        let outW = w.output[2]
        let rowsPerImage = w.output[0] * w.output[1]
        let outVolume = w.outputVolume
        guard k > 0 else {
            for i in 0..<(batch * outChannels * outVolume) { y[i] = 0 }
            for n in 0..<batch {
                let out = y + n * outChannels * outVolume
                ConvEpilogue.copy(
                    from: out, ld: outVolume, to: out, ldOut: outVolume, rows: outChannels, length: outVolume, bias: bias,
                    activation: activation)
            }
            return
        }
        var rowsPerChunk = max(Self.chunkBudget / (k * outW), (Self.minColumns + outW - 1) / outW, 1)
        var imagesPerChunk = 1
        if rowsPerChunk >= rowsPerImage {
            imagesPerChunk = min(batch, max(1, rowsPerChunk / rowsPerImage))
            rowsPerChunk = rowsPerImage
        }
        let chunkColumns = imagesPerChunk * rowsPerChunk * outW
        let (size, overflow) = k.multipliedReportingOverflow(by: chunkColumns)
        guard !overflow, size <= Shape.maxElements else { throw .invalid("im2col buffer of \(k)×\(chunkColumns) is too large") }
        let columns = UnsafeMutablePointer<Float>.allocate(capacity: size)
        defer { columns.deallocate() }
        // A chunk that spans images computes into a staging matrix, then scatters per image.
        let staging: UnsafeMutablePointer<Float>? =
            imagesPerChunk > 1 && packed == nil ? UnsafeMutablePointer<Float>.allocate(capacity: groupOut * chunkColumns) : nil
        defer { staging?.deallocate() }

        var n0 = 0
        while n0 < batch {
            let images = min(imagesPerChunk, batch - n0)
            var r0 = 0
            while r0 < rowsPerImage {
                let rows = min(rowsPerChunk, rowsPerImage - r0)
                let perImage = rows * outW
                let cols = images * perImage
                for g in 0..<group {
                    // By channel ranges across threads: each channel fills its own rows of the matrix.
                    Parallel.forEachChunk(count: groupIn, work: 4 * k * cols) { channels in
                        let rowOffset = channels.lowerBound * w.kernelVolume * cols
                        for i in 0..<images {
                            let source = x + ((n0 + i) * inChannels + g * groupIn + channels.lowerBound) * w.inputVolume
                            Im2col.fill(
                                columns + rowOffset + i * perImage, ld: cols, from: source, channels: channels.count, window: w,
                                rows: r0..<(r0 + rows))
                        }
                    }
                    let filters = weight + g * groupOut * k
                    let groupBias = bias.map { $0 + g * groupOut }
                    if let packed {
                        // Packed filters write each image's columns in place, with no staging.
                        let space = ColumnSpace(
                            b: columns, ldb: cols, bImage: perImage, y: y + (n0 * outChannels + g * groupOut) * outVolume + r0 * outW,
                            ldy: outVolume, yImage: outChannels * outVolume, perImage: perImage, images: images)
                        packed.multiply(group: g, space, bias: groupBias, activation: activation)
                    } else if let staging {
                        LinearBLAS.sgemm(
                            transA: false, transB: false, m: groupOut, n: cols, k: k, alpha: 1, a: filters, lda: k, b: columns,
                            ldb: cols, beta: 0, c: staging, ldc: cols)
                        for i in 0..<images {
                            let out = y + ((n0 + i) * outChannels + g * groupOut) * outVolume + r0 * outW
                            ConvEpilogue.copy(
                                from: staging + i * perImage, ld: cols, to: out, ldOut: outVolume, rows: groupOut, length: perImage,
                                bias: groupBias, activation: activation)
                        }
                    } else {
                        let out = y + (n0 * outChannels + g * groupOut) * outVolume + r0 * outW
                        LinearBLAS.sgemm(
                            transA: false, transB: false, m: groupOut, n: cols, k: k, alpha: 1, a: filters, lda: k, b: columns,
                            ldb: cols, beta: 0, c: out, ldc: outVolume)
                        ConvEpilogue.copy(
                            from: out, ld: outVolume, to: out, ldOut: outVolume, rows: groupOut, length: perImage, bias: groupBias,
                            activation: activation)
                    }
                }
                r0 += rows
            }
            n0 += images
        }
    }
}

/// Lays out receptive fields as a matrix with one row per (channel, kernel tap) and one column
/// per output position of the output rows `rows` (an output row is one (depth, height) pair),
/// rows `ld` floats apart.
enum Im2col {
    static func fill(
        _ col: UnsafeMutablePointer<Float>, ld: Int, from x: UnsafePointer<Float>, channels: Int, window w: Window, rows: Range<Int>
    ) {
        let (inD, inH, inW) = (w.input[0], w.input[1], w.input[2])
        let (outH, outW) = (w.output[1], w.output[2])
        let (kD, kH, kW) = (w.kernel[0], w.kernel[1], w.kernel[2])
        let strideW = w.stride[2]
        if w.input[0] == 1, w.output[0] == 1, strideW == 1, w.stride[1] == 1, w.dilation[2] == 1, inW == outW {
            shifted(col, ld: ld, from: x, channels: channels, window: w, rows: rows)
            return
        }
        var row = col
        for c in 0..<channels {
            let plane = x + c * w.inputVolume
            for kd in 0..<kD {
                for kh in 0..<kH {
                    for kw in 0..<kW {
                        let offW = kw * w.dilation[2] - w.padBegin[2]
                        let valid = w.outputs(2, offset: offW)
                        let (lo, hi) = (valid.lowerBound, valid.upperBound)
                        var dst = row
                        for r in rows {
                            let (od, oh) = r.quotientAndRemainder(dividingBy: outH)
                            let id = od * w.stride[0] - w.padBegin[0] + kd * w.dilation[0]
                            let ih = oh * w.stride[1] - w.padBegin[1] + kh * w.dilation[1]
                            if id < 0 || id >= inD || ih < 0 || ih >= inH || lo >= hi {
                                for o in 0..<outW { dst[o] = 0 }
                            } else {
                                let src = plane + (id * inH + ih) * inW + offW
                                for o in 0..<lo { dst[o] = 0 }
                                switch strideW {
                                case 1: for o in lo..<hi { dst[o] = src[o] }
                                case 2: Self.copyEven(to: dst, from: src, lo..<hi, rowEnd: inW - offW)
                                default: for o in lo..<hi { dst[o] = src[o * strideW] }
                                }
                                for o in hi..<outW { dst[o] = 0 }
                            }
                            dst += outW
                        }
                        row += ld
                    }
                }
            }
        }
    }

    /// dst[o] = src[2·o] for o in `range`, 16 at a time while a 32-float load stays before
    /// `rowEnd` (the end of the input row, relative to `src`), then one at a time.
    @inline(__always)
    private static func copyEven(to dst: UnsafeMutablePointer<Float>, from src: UnsafePointer<Float>, _ range: Range<Int>, rowEnd: Int) {
        var o = range.lowerBound
        while o + 16 <= range.upperBound, 2 * o + 32 <= rowEnd {
            let pairs = UnsafeRawPointer(src + 2 * o).loadUnaligned(as: SIMD32<Float>.self)
            UnsafeMutableRawPointer(dst + o).storeBytes(of: pairs.evenHalf, as: SIMD16<Float>.self)
            o += 16
        }
        while o < range.upperBound {
            dst[o] = src[2 * o]
            o += 1
        }
    }

    /// The 2-D stride-1 case where input and output rows have the same width: a tap's column
    /// row is then the input plane shifted by the tap's offset, one contiguous copy, after
    /// which only the columns that fell into the horizontal padding need zeroing.
    private static func shifted(
        _ col: UnsafeMutablePointer<Float>, ld: Int, from x: UnsafePointer<Float>, channels: Int, window w: Window, rows: Range<Int>
    ) {
        let (inW, outW) = (w.input[2], w.output[2])
        let (kH, kW) = (w.kernel[1], w.kernel[2])
        var row = col
        for c in 0..<channels {
            let plane = x + c * w.inputVolume
            for kh in 0..<kH {
                let offH = kh * w.dilation[1] - w.padBegin[1]
                let live = w.outputs(1, offset: offH).clamped(to: rows)
                for kw in 0..<kW {
                    let offW = kw - w.padBegin[2]
                    let valid = w.outputs(2, offset: offW)
                    let (lo, hi) = (valid.lowerBound, valid.upperBound)
                    if live.isEmpty || lo >= hi {
                        row.update(repeating: 0, count: rows.count * outW)
                        row += ld
                        continue
                    }
                    let head = (live.lowerBound - rows.lowerBound) * outW
                    let tail = (rows.upperBound - live.upperBound) * outW
                    if head > 0 { row.update(repeating: 0, count: head) }
                    if tail > 0 { (row + (rows.count * outW - tail)).update(repeating: 0, count: tail) }
                    // Copy from the first valid column of the first live row to the last valid
                    // column of the last live row; the columns in between that belong to the
                    // padding read neighbouring input rows and are zeroed below.
                    let first = live.lowerBound * outW + lo
                    let last = (live.upperBound - 1) * outW + hi
                    let dst = row - rows.lowerBound * outW
                    (dst + first).update(from: plane + first + offH * inW + offW, count: last - first)
                    for oh in live {
                        let r = dst + oh * outW
                        for o in 0..<lo { r[o] = 0 }
                        for o in hi..<outW { r[o] = 0 }
                    }
                    row += ld
                }
            }
        }
    }
}
