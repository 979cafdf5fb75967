import Foundation

/// Float loops written so that LLVM vectorises them without fast-math: reductions keep several
/// SIMD accumulators, and exp is a branch-free polynomial instead of a libm call per element.
enum ReductionMath {
    /// Sum of `count` floats.
    static func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var acc0 = SIMD8<Float>()
        var acc1 = SIMD8<Float>()
        let raw = UnsafeRawPointer(x)
        var i = 0
        while i + 16 <= count {
            acc0 += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            acc1 += raw.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
            i += 16
        }
        var total = (acc0 + acc1).sum()
        while i < count {
            total += x[i]
            i += 1
        }
        return total
    }

    /// Largest of `count` ≥ 1 floats.
    static func maximum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var best = x[0]
        var i = 0
        if count >= 8 {
            let raw = UnsafeRawPointer(x)
            var acc = raw.loadUnaligned(as: SIMD8<Float>.self)
            i = 8
            while i + 8 <= count {
                let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                acc.replace(with: v, where: v .> acc)
                i += 8
            }
            best = acc.max()
        }
        while i < count {
            if x[i] > best { best = x[i] }
            i += 1
        }
        return best
    }

    /// y[i] = exp(x[i] − shift); returns the sum of the y. `y` may be `x`.
    @inline(__always)
    static func shiftedExp(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, shift: Float)
        -> Float
    {
        for i in 0..<count { y[i] = exp(x[i] - shift) }
        return sum(y, count: count)
    }

    /// e^x to about 1 ulp (Cephes' expf polynomial): 0 below −87.3, capped near e^88.
    @inline(__always)
    static func exp(_ value: Float) -> Float {
        let x = min(max(value, -87.33654), 88.0)
        // Adding 1.5·2^23 rounds x·log2(e) to an integer that sits in the low mantissa bits.
        let magic: Float = 12_582_912
        let shifted = x * 1.442_695_04 + magic
        let n = shifted - magic
        let r = x - n * 0.693_359_375 + n * 2.121_944_4e-4
        var p: Float = 1.987_569_15e-4
        p = p * r + 1.398_199_95e-3
        p = p * r + 8.333_451_9e-3
        p = p * r + 4.166_579_59e-2
        p = p * r + 1.666_666_55e-1
        p = p * r + 5.000_000_12e-1
        let poly = p * r * r + r + 1
        let exponent = Int32(bitPattern: shifted.bitPattern) &- 0x4B40_0000 &+ 127
        let scale = Float(bitPattern: UInt32(bitPattern: exponent) &<< 23)
        return value < -87.33654 ? 0 : poly * scale
    }
}
