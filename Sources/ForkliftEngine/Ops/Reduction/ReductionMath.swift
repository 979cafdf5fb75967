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
        for i in 0..<count { y[i] = FastMath.exp(x[i] - shift) }
        return sum(y, count: count)
    }
}
