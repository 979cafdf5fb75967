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
            let accumulator = UnsafeMutablePointer<Float>.allocate(capacity: outputLength + 8)
            let sources = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: tapPhase.count)
            defer {
                phases.deallocate()
                accumulator.deallocate()
                sources.deallocate()
            }
            for t in tapPhase.indices { sources[t] = UnsafePointer(phases + tapPhase[t] * phaseSize + tapOffset[t]) }
            for plane in range {
                let (n, c) = plane.quotientAndRemainder(dividingBy: channels)
                fillPhases(phases, from: x + plane * w.inputVolume)
                for f in 0..<multiplier {
                    let m = c * multiplier + f
                    Self.accumulate(
                        accumulator, count: outputLength, sources: sources, taps: weight + m * w.kernelVolume,
                        tapCount: tapPhase.count, bias: bias?[m] ?? 0)
                    store(accumulator, into: y + (n * channels * multiplier + m) * w.outputVolume, low: low, high: high, clamp: clamp)
                }
            }
        }
    }

    /// acc[p] = bias + Σₜ taps[t]·sources[t][p] for p in 0..<count (rounded up to 8: the
    /// buffers have slack), keeping eight sums in registers across all taps.
    @inline(__always)
    private static func accumulate(
        _ acc: UnsafeMutablePointer<Float>, count: Int, sources: UnsafeMutablePointer<UnsafePointer<Float>>,
        taps: UnsafePointer<Float>, tapCount: Int, bias: Float
    ) {
        var p = 0
        while p < count {
            var sum = SIMD8<Float>(repeating: bias)
            for t in 0..<tapCount {
                let v = UnsafeRawPointer(sources[t] + p).loadUnaligned(as: SIMD8<Float>.self)
                sum += v * taps[t]
            }
            UnsafeMutableRawPointer(acc + p).storeBytes(of: sum, as: SIMD8<Float>.self)
            p += 8
        }
    }

    /// Copies the kept columns of the accumulated positions to the output.
    @inline(__always)
    private func store(_ acc: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>, low: Float, high: Float, clamp: Bool) {
        let outW = window.output[2]
        for row in 0..<window.output[1] {
            let dst = out + row * outW
            let src = acc + row * phaseWidth
            if clamp {
                for i in 0..<outW { dst[i] = min(max(src[i], low), high) }
            } else {
                dst.update(from: src, count: outW)
            }
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
