/// The arithmetic of one depthwise output plane over phase planes (see `DepthwisePlanar`):
/// `out[oh, ow] = clamp(bias + Σₜ taps[t] · sources[t][oh·phaseWidth + ow])`.
///
/// Work goes in tiles of four output rows × eight columns held in four SIMD8 registers; each tap
/// is one broadcast weight and four loads and fused multiply-adds, so the weight and the tap's
/// address are fetched once per 32 outputs. The last column tile of a row reads past the row's
/// end (into the next phase row or the plane's slack, always allocated); its extra lanes are
/// dropped, and nothing outside the output plane is written.
struct DepthwiseRows {
    let outH: Int
    let outW: Int
    let phaseWidth: Int
    let tapCount: Int
    let low: Float
    let high: Float
    let clamp: Bool

    /// `tapCount` equals `self.tapCount`; passing it as a literal at the call site lets the
    /// compiler unroll the tap loop.
    @inline(__always)
    func run(
        _ out: UnsafeMutablePointer<Float>, sources: UnsafePointer<UnsafePointer<Float>>, taps: UnsafePointer<Float>, tapCount: Int,
        bias: Float
    ) {
        guard outH >= 4 else {
            for oh in 0..<outH { row(out, oh, sources: sources, taps: taps, tapCount: tapCount, bias: bias) }
            return
        }
        // Tiles of four rows; when outH is not a multiple of four, the last tile overlaps the
        // one before it and recomputes (identically) a few rows.
        var oh = 0
        while oh < outH {
            fourRows(out, min(oh, outH - 4), sources: sources, taps: taps, tapCount: tapCount, bias: bias)
            oh += 4
        }
    }

    @inline(__always)
    private func fourRows(
        _ out: UnsafeMutablePointer<Float>, _ oh: Int, sources: UnsafePointer<UnsafePointer<Float>>, taps: UnsafePointer<Float>,
        tapCount: Int, bias: Float
    ) {
        let q = phaseWidth
        var ow = 0
        while ow < outW {
            let at = oh * q + ow
            var a0 = SIMD8<Float>(repeating: bias)
            var a1 = a0
            var a2 = a0
            var a3 = a0
            for t in 0..<tapCount {
                let s = sources[t] + at
                let w = SIMD8<Float>(repeating: taps[t])
                a0.addProduct(Self.load(s), w)
                a1.addProduct(Self.load(s + q), w)
                a2.addProduct(Self.load(s + 2 * q), w)
                a3.addProduct(Self.load(s + 3 * q), w)
            }
            store(a0, out, oh, ow)
            store(a1, out, oh + 1, ow)
            store(a2, out, oh + 2, ow)
            store(a3, out, oh + 3, ow)
            ow += 8
        }
    }

    @inline(__always)
    private func row(
        _ out: UnsafeMutablePointer<Float>, _ oh: Int, sources: UnsafePointer<UnsafePointer<Float>>, taps: UnsafePointer<Float>,
        tapCount: Int, bias: Float
    ) {
        var ow = 0
        while ow < outW {
            let at = oh * phaseWidth + ow
            var a0 = SIMD8<Float>(repeating: bias)
            for t in 0..<tapCount {
                a0.addProduct(Self.load(sources[t] + at), SIMD8<Float>(repeating: taps[t]))
            }
            store(a0, out, oh, ow)
            ow += 8
        }
    }

    @inline(__always)
    private static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    /// Stores columns `ow..<ow+8` of row `oh`, clamped. A full vector goes past the row's end
    /// only when rows hold at most eight columns and the plane does not end there: then the
    /// spill lands in later rows, which are stored afterwards (rows go in increasing order, and
    /// the overlapping last tile restores the rows after the one it starts at).
    @inline(__always)
    private func store(_ value: SIMD8<Float>, _ out: UnsafeMutablePointer<Float>, _ oh: Int, _ ow: Int) {
        var v = value
        if clamp {
            // Compare-and-replace compiles to vmaxps/vminps; SIMD's clamped() is a scalar loop.
            let (l, h) = (SIMD8<Float>(repeating: low), SIMD8<Float>(repeating: high))
            v.replace(with: l, where: v .< l)
            v.replace(with: h, where: v .> h)
        }
        let p = out + oh * outW + ow
        let count = outW - ow
        if count >= 8 || (outW <= 8 && (oh * outW + ow) + 8 <= outH * outW) {
            UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
        } else {
            for i in 0..<count { p[i] = v[i] }
        }
    }
}
