import Foundation

/// A JSON number's decimal digits as an integer significand and a power of ten, gathered while the
/// parser scans the literal. Tensors arrive as hundreds of thousands of these, and strtod (with the
/// NUL-terminated copy it needs) was most of a large request's parse time.
struct DecimalLiteral {
    /// Significant digits seen, up to `maxDigits`; past that the literal takes the slow path.
    var significand: UInt64 = 0
    var digitCount = 0
    /// Power of ten applied to `significand`.
    var exponent = 0
    var negative = false
    var tooManyDigits = false

    static let maxDigits = 19

    mutating func appendIntegerDigit(_ digit: UInt8) {
        guard !(digitCount == 0 && digit == 0) else { return }
        if digitCount < Self.maxDigits {
            significand = significand &* 10 &+ UInt64(digit)
            digitCount += 1
        } else {
            tooManyDigits = true
        }
    }

    mutating func appendFractionDigit(_ digit: UInt8) {
        if digitCount == 0 && digit == 0 {
            exponent -= 1
        } else if digitCount < Self.maxDigits {
            significand = significand &* 10 &+ UInt64(digit)
            digitCount += 1
            exponent -= 1
        } else {
            tooManyDigits = true
        }
    }

    /// The literal as an Int64 when it is an integer that fits. JSON allows no leading zeros, so a
    /// literal past 19 digits never fits.
    var exactInteger: Int64? {
        guard !tooManyDigits, exponent == 0 else { return nil }
        if negative { return significand <= UInt64(Int64.max) + 1 ? Int64(truncatingIfNeeded: 0 &- significand) : nil }
        return significand <= UInt64(Int64.max) ? Int64(significand) : nil
    }

    /// The correctly rounded Double, or nil when only a full decimal conversion can tell.
    var double: Double? {
        guard !tooManyDigits else { return nil }
        if significand == 0 { return negative ? -0.0 : 0.0 }
        // Clinger's fast path: both operands are exact doubles, so one IEEE operation rounds once.
        if significand <= 1 << 53, (-22...22).contains(exponent) {
            let value = Double(significand)
            let scaled = exponent < 0 ? value / Self.exactPowers[-exponent] : value * Self.exactPowers[exponent]
            return negative ? -scaled : scaled
        }
        #if arch(x86_64)
            return extendedDouble
        #else
            return nil
        #endif
    }

    #if arch(x86_64)
        /// Up to 19 digits and 10^±27 are exact in Float80's 64-bit significand, so one extended
        /// operation is within half an extended ulp of the true value. Rounding that to Double is right
        /// unless the 11 extra bits sit next to the halfway point; then the caller falls back to strtod.
        private var extendedDouble: Double? {
            guard (-27...27).contains(exponent) else { return nil }
            let value = Float80(significand)
            let power = Self.extendedPowers[abs(exponent)]
            let scaled = exponent < 0 ? value / power : value * power
            let extraBits = scaled.significandBitPattern & 0x7FF
            guard extraBits < 0x3FF || extraBits > 0x401 else { return nil }
            let rounded = Double(scaled)
            return negative ? -rounded : rounded
        }

        private static let extendedPowers: [Float80] = (0...27).map { exponent in
            var power: Float80 = 1
            for _ in 0..<exponent { power *= 10 }
            return power
        }
    #endif

    private static let exactPowers: [Double] = (0...22).map { exponent in
        var power: Double = 1
        for _ in 0..<exponent { power *= 10 }
        return power
    }
}
