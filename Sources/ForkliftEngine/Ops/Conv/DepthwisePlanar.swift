import Foundation

/// Depthwise convolution of 1-D and 2-D planes as long contiguous loops. Each input plane is
/// copied once, zero-padded, into `stride²` phase planes (phase (a, b) holds padded rows ≡ a and
/// columns ≡ b modulo the stride), all of row length `q`. In phase coordinates every kernel tap
/// reads its phase plane at a fixed offset from the output position `oh·q + ow`, so each tap is
/// one axpy over the flattened output; the columns `outW..<q` are computed and dropped.
struct DepthwisePlanar {
    let window: Window
    /// Height and width of the padded input.
    let paddedH: Int
    let paddedW: Int
    /// Rows and row length of one phase plane, and its allocated size (with slack for the
    /// dropped columns' reads past the last row).
    let phaseRows: Int
    let phaseWidth: Int
    let phaseSize: Int
    /// For each tap: the phase plane it reads and its offset there.
    let tapPhase: [Int]
    let tapOffset: [Int]
    /// Output positions computed per chunk, so that the accumulator stays in L1.
    static let chunk = 512

    init(_ w: Window) {
        window = w
        let s = (w.stride[1], w.stride[2])
        paddedH = w.input[1] + w.padBegin[1] + w.padEnd[1]
        paddedW = w.input[2] + w.padBegin[2] + w.padEnd[2]
        phaseRows = (paddedH + s.0 - 1) / s.0
        phaseWidth = (paddedW + s.1 - 1) / s.1
        var phases: [Int] = []
        var offsets: [Int] = []
        for kh in 0..<w.kernel[1] {
            for kw in 0..<w.kernel[2] {
                let (dh, dw) = (kh * w.dilation[1], kw * w.dilation[2])
                phases.append((dh % s.0) * s.1 + dw % s.1)
                offsets.append((dh / s.0) * phaseWidth + dw / s.1)
            }
        }
        tapPhase = phases
        tapOffset = offsets
        phaseSize = (phaseRows + 1) * phaseWidth + (offsets.max() ?? 0) + 8
    }

    /// True when the window suits this path: no depth, and strides small enough that the
    /// phase planes are not mostly unused.
    static func applies(_ w: Window) -> Bool {
        w.input[0] == 1 && w.kernel[0] == 1 && w.stride[1] <= 4 && w.stride[2] <= 4
    }

    func run(
        x: UnsafeMutablePointer<Float>, weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>?,
        y: UnsafeMutablePointer<Float>, batch: Int, channels: Int, multiplier: Int, low: Float, high: Float, clamp: Bool
    ) {
        let w = window
        let phaseCount = w.stride[1] * w.stride[2]
        let outputLength = w.output[1] * phaseWidth
        let work = batch * channels * multiplier * w.outputVolume * w.kernelVolume
        Parallel.forEachChunk(count: batch * channels, work: work) { range in
            let phases = UnsafeMutablePointer<Float>.allocate(capacity: phaseCount * phaseSize)
            phases.initialize(repeating: 0, count: phaseCount * phaseSize)
            let accumulator = UnsafeMutablePointer<Float>.allocate(capacity: Self.chunk)
            defer {
                phases.deallocate()
                accumulator.deallocate()
            }
            tapPhase.withUnsafeBufferPointer { tapPhase in
                tapOffset.withUnsafeBufferPointer { tapOffset in
                    for plane in range {
                        let (n, c) = plane.quotientAndRemainder(dividingBy: channels)
                        fillPhases(phases, from: x + plane * w.inputVolume)
                        for f in 0..<multiplier {
                            let m = c * multiplier + f
                            let taps = weight + m * w.kernelVolume
                            let out = y + (n * channels * multiplier + m) * w.outputVolume
                            let b = bias?[m] ?? 0
                            var start = 0
                            while start < outputLength {
                                let count = min(Self.chunk, outputLength - start)
                                accumulator.update(repeating: b, count: count)
                                for t in 0..<tapPhase.count {
                                    let src = phases + tapPhase[t] * phaseSize + tapOffset[t] + start
                                    Self.axpy(accumulator, src, taps[t], count)
                                }
                                store(accumulator, count: count, at: start, into: out, low: low, high: high, clamp: clamp)
                                start += count
                            }
                        }
                    }
                }
            }
        }
    }

    @inline(__always)
    private static func axpy(_ acc: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ a: Float, _ count: Int) {
        for i in 0..<count { acc[i] += a * src[i] }
    }

    /// Copies the kept columns of accumulated positions `start..<start+count` to the output.
    @inline(__always)
    private func store(
        _ acc: UnsafeMutablePointer<Float>, count: Int, at start: Int, into out: UnsafeMutablePointer<Float>, low: Float, high: Float,
        clamp: Bool
    ) {
        let outW = window.output[2]
        var p = start
        let end = start + count
        while p < end {
            let (row, column) = p.quotientAndRemainder(dividingBy: phaseWidth)
            let runEnd = min(end, p - column + phaseWidth)
            if column < outW {
                let n = min(outW, column + (runEnd - p)) - column
                let dst = out + row * outW + column
                let src = acc + (p - start)
                if clamp {
                    for i in 0..<n { dst[i] = min(max(src[i], low), high) }
                } else {
                    dst.update(from: src, count: n)
                }
            }
            p = runEnd
        }
    }

    /// Writes the zero-padded plane `x` into the phase planes (their slack stays zero).
    private func fillPhases(_ phases: UnsafeMutablePointer<Float>, from x: UnsafePointer<Float>) {
        let w = window
        let (sh, sw) = (w.stride[1], w.stride[2])
        let (inH, inW) = (w.input[1], w.input[2])
        for a in 0..<sh {
            for b in 0..<sw {
                let plane = phases + (a * sw + b) * phaseSize
                // Phase columns j whose padded column s·j + b lies inside the input.
                let first = max(0, (w.padBegin[2] - b + sw - 1) / sw)
                let last = min(phaseWidth, max(first, (inW + w.padBegin[2] - b + sw - 1) / sw))
                for i in 0..<phaseRows {
                    let row = plane + i * phaseWidth
                    let ih = i * sh + a - w.padBegin[1]
                    guard ih >= 0, ih < inH, first < last else {
                        row.update(repeating: 0, count: phaseWidth)
                        continue
                    }
                    row.update(repeating: 0, count: first)
                    let src = x + ih * inW + (b - w.padBegin[2])
                    if sw == 1 {
                        (row + first).update(from: src + first, count: last - first)
                    } else {
                        for j in first..<last { row[j] = src[j * sw] }
                    }
                    (row + last).update(repeating: 0, count: phaseWidth - last)
                }
            }
        }
    }
}
