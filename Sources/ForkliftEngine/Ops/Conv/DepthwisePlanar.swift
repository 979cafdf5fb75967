import CForkliftKernels
import Foundation

/// Depthwise convolution of 1-D and 2-D planes as contiguous vector loops. Each input plane is
/// copied once, zero-padded, into `stride²` phase planes (phase (a, b) holds padded rows ≡ a and
/// columns ≡ b modulo the stride), all of row length `q`. In phase coordinates every kernel tap
/// reads its phase plane at a fixed offset from the output position `oh·q + ow`, so the taps of
/// eight neighbouring outputs are eight contiguous floats: `DepthwiseRows` (AVX2) or
/// `forklift_depthwise_plane_avx512` does the arithmetic.
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
        y: UnsafeMutablePointer<Float>, batch: Int, channels: Int, multiplier: Int, low: Float, high: Float, clamp: Bool,
        wide: Bool
    ) {
        let w = window
        let phaseCount = w.stride[1] * w.stride[2]
        let work = batch * channels * multiplier * w.outputVolume * w.kernelVolume
        let rows = DepthwiseRows(
            outH: w.output[1], outW: w.output[2], phaseWidth: phaseWidth, tapCount: tapPhase.count, low: low, high: high, clamp: clamp)
        let square = w.kernel[1] == w.kernel[2] ? w.kernel[1] : 0
        // Copying a 7×7 plane cost as much as convolving it, for the integer division per row and
        // the partial vectors: the C fill has neither (strides 1 and 2, all EfficientNet has).
        let wideFill = wide && w.stride[1] <= 2 && w.stride[2] <= 2
        Parallel.forEachChunk(count: batch * channels, work: work) { range in
            let phases = UnsafeMutablePointer<Float>.allocate(capacity: phaseCount * phaseSize)
            phases.initialize(repeating: 0, count: phaseCount * phaseSize)
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: paddedRowLength)
            scratch.initialize(repeating: 0, count: paddedRowLength)
            let sources = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: tapPhase.count)
            defer {
                phases.deallocate()
                scratch.deallocate()
                sources.deallocate()
            }
            for t in tapPhase.indices { sources[t] = UnsafePointer(phases + tapPhase[t] * phaseSize + tapOffset[t]) }
            // C's `const float *const *`; an optional pointer has the same layout.
            let cSources = UnsafeRawPointer(sources).assumingMemoryBound(to: UnsafePointer<Float>?.self)
            for plane in range {
                let (n, c) = plane.quotientAndRemainder(dividingBy: channels)
                if wideFill {
                    forklift_depthwise_fill_avx512(
                        phases, phaseSize, phaseWidth, x + plane * w.inputVolume, w.input[1], w.input[2], w.padBegin[1], w.padBegin[2],
                        Int32(w.stride[1]), Int32(w.stride[2]))
                } else {
                    fillPhases(phases, scratch: scratch, from: x + plane * w.inputVolume)
                }
                for f in 0..<multiplier {
                    let m = c * multiplier + f
                    let out = y + (n * channels * multiplier + m) * w.outputVolume
                    let taps = UnsafePointer(weight + m * w.kernelVolume)
                    let b = bias?[m] ?? 0
                    // Without an activation the bounds are ±∞, which the kernels' clamp leaves as is.
                    if wide, square > 0, w.dilation[1] == 1, w.dilation[2] == 1 {
                        forklift_depthwise_square_avx512(
                            out, w.output[1], w.output[2], cSources, phaseWidth, taps, Int32(square), Int32(w.stride[1]), b, low, high)
                        continue
                    }
                    if wide {
                        forklift_depthwise_plane_avx512(
                            out, w.output[1], w.output[2], cSources, phaseWidth, taps, Int32(tapPhase.count), b, low, high)
                        continue
                    }
                    // Literal tap counts let the compiler unroll the tap loop for 3×3 and 5×5.
                    switch square {
                    case 3: rows.run(out, sources: sources, taps: taps, tapCount: 9, bias: b)
                    case 5: rows.run(out, sources: sources, taps: taps, tapCount: 25, bias: b)
                    default: rows.run(out, sources: sources, taps: taps, tapCount: tapPhase.count, bias: b)
                    }
                }
            }
        }
    }

    /// Writes plane `x` into the phase planes. Only the positions that hold input are written:
    /// the padding (and the slack) stays as `phases` was allocated, zero, for every plane.
    /// `scratch` holds one padded input row (`paddedRowLength` floats, zero outside the input).
    private func fillPhases(_ phases: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, from x: UnsafePointer<Float>) {
        let w = window
        let (sh, sw) = (w.stride[1], w.stride[2])
        let (inH, inW) = (w.input[1], w.input[2])
        let (padTop, padLeft) = (w.padBegin[1], w.padBegin[2])
        let q = phaseWidth
        for ih in 0..<inH {
            let (i, a) = (ih + padTop).quotientAndRemainder(dividingBy: sh)
            let src = x + ih * inW
            if sw == 1 {
                Self.copy(src, to: phases + a * phaseSize + i * q + padLeft, count: inW)
                continue
            }
            // Padded row in scratch, then column phase b takes padded columns b, b + sw, …
            Self.copy(src, to: scratch + padLeft, count: inW)
            let row0 = phases + (a * sw) * phaseSize + i * q
            if sw == 2 {
                Self.deinterleave(scratch, into: row0, row0 + phaseSize, count: q)
            } else {
                for b in 0..<sw {
                    let row = row0 + b * phaseSize
                    for j in 0..<q { row[j] = scratch[j * sw + b] }
                }
            }
        }
    }

    /// The padded row length `scratch` needs: every phase column, plus a vector's slack.
    var paddedRowLength: Int { phaseWidth * window.stride[2] + 16 }

    /// A short row copy inline: a memcpy call per row of 7 to 112 floats costs more than the copy.
    @inline(__always)
    private static func copy(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count: Int) {
        var j = 0
        while j + 8 <= count {
            UnsafeMutableRawPointer(dst + j).storeBytes(
                of: UnsafeRawPointer(src + j).loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
            j += 8
        }
        if j + 4 <= count {
            UnsafeMutableRawPointer(dst + j).storeBytes(
                of: UnsafeRawPointer(src + j).loadUnaligned(as: SIMD4<Float>.self), as: SIMD4<Float>.self)
            j += 4
        }
        while j < count {
            dst[j] = src[j]
            j += 1
        }
    }

    /// even[j] = src[2j], odd[j] = src[2j + 1] for j in 0..<count, eight at a time.
    @inline(__always)
    private static func deinterleave(
        _ src: UnsafePointer<Float>, into even: UnsafeMutablePointer<Float>, _ odd: UnsafeMutablePointer<Float>, count: Int
    ) {
        var j = 0
        while j + 8 <= count {
            let v = UnsafeRawPointer(src + 2 * j).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(even + j).storeBytes(of: v.evenHalf, as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(odd + j).storeBytes(of: v.oddHalf, as: SIMD8<Float>.self)
            j += 8
        }
        while j < count {
            even[j] = src[2 * j]
            odd[j] = src[2 * j + 1]
            j += 1
        }
    }
}
