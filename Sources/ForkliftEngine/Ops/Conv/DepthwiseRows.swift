/// The arithmetic of one depthwise output plane over phase planes (see `DepthwisePlanar`):
/// `out[oh, ow] = clamp(bias + Σₜ taps[t] · sources[t][oh·phaseWidth + ow])`.
///
/// Work goes in tiles of four output rows × eight columns held in four SIMD8 registers; each tap
/// is one broadcast weight and four loads and fused multiply-adds, so the weight and the tap's
/// address are fetched once per 32 outputs. The last column tile of a row reads past the row's
/// end (into the next phase row or the plane's slack, always allocated) and stores only the
/// columns that exist, so nothing outside the output plane is written.
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
        let q = phaseWidth
        var oh = 0
        while oh + 4 <= outH {
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
                let o = out + oh * outW + ow
                let count = min(8, outW - ow)
                store(a0, o, count)
                store(a1, o + outW, count)
                store(a2, o + 2 * outW, count)
                store(a3, o + 3 * outW, count)
                ow += 8
            }
            oh += 4
        }
        while oh < outH {
            var ow = 0
            while ow < outW {
                let at = oh * q + ow
                var a0 = SIMD8<Float>(repeating: bias)
                for t in 0..<tapCount {
                    a0.addProduct(Self.load(sources[t] + at), SIMD8<Float>(repeating: taps[t]))
                }
                store(a0, out + oh * outW + ow, min(8, outW - ow))
                ow += 8
            }
            oh += 1
        }
    }

    @inline(__always)
    private static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    private func store(_ value: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
        var v = value
        if clamp {
            // Compare-and-replace compiles to vmaxps/vminps; SIMD's clamped() is a scalar loop.
            let (l, h) = (SIMD8<Float>(repeating: low), SIMD8<Float>(repeating: high))
            v.replace(with: l, where: v .< l)
            v.replace(with: h, where: v .> h)
        }
        if count == 8 {
            UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
        } else {
            for i in 0..<count { p[i] = v[i] }
        }
    }
}
