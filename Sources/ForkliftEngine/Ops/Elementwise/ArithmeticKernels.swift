import Foundation

/// Element types of Add, Sub, Mul and Div. Integers wrap on overflow and divide toward zero,
/// as ONNX's C++-style semantics ask; they never trap on model data.
protocol ArithmeticElement {
    static func elementwiseSum(_ a: Self, _ b: Self) -> Self
    static func elementwiseDifference(_ a: Self, _ b: Self) -> Self
    static func elementwiseProduct(_ a: Self, _ b: Self) -> Self
    static func elementwiseQuotient(_ a: Self, _ b: Self) -> Self
}

protocol FloatArithmeticElement: ArithmeticElement, FloatingPoint {}

extension FloatArithmeticElement {
    @inline(__always) static func elementwiseSum(_ a: Self, _ b: Self) -> Self { a + b }
    @inline(__always) static func elementwiseDifference(_ a: Self, _ b: Self) -> Self { a - b }
    @inline(__always) static func elementwiseProduct(_ a: Self, _ b: Self) -> Self { a * b }
    @inline(__always) static func elementwiseQuotient(_ a: Self, _ b: Self) -> Self { a / b }
}

protocol IntegerArithmeticElement: ArithmeticElement, FixedWidthInteger {}

extension IntegerArithmeticElement {
    @inline(__always) static func elementwiseSum(_ a: Self, _ b: Self) -> Self { a &+ b }
    @inline(__always) static func elementwiseDifference(_ a: Self, _ b: Self) -> Self { a &- b }
    @inline(__always) static func elementwiseProduct(_ a: Self, _ b: Self) -> Self { a &* b }
    /// Division by zero gives 0 rather than a trap (ONNX leaves it undefined); min / -1 wraps.
    @inline(__always) static func elementwiseQuotient(_ a: Self, _ b: Self) -> Self {
        b == 0 ? 0 : a.dividedReportingOverflow(by: b).partialValue
    }
}

extension Float: FloatArithmeticElement {}
extension Double: FloatArithmeticElement {}
extension Int64: IntegerArithmeticElement {}
extension Int32: IntegerArithmeticElement {}
extension Int8: IntegerArithmeticElement {}
extension UInt8: IntegerArithmeticElement {}

enum AddFunction<T: ArithmeticElement>: BinaryFunction {
    @inline(__always) static func apply(_ a: T, _ b: T) -> T { T.elementwiseSum(a, b) }
}

enum SubFunction<T: ArithmeticElement>: BinaryFunction {
    @inline(__always) static func apply(_ a: T, _ b: T) -> T { T.elementwiseDifference(a, b) }
}

enum MulFunction<T: ArithmeticElement>: BinaryFunction {
    @inline(__always) static func apply(_ a: T, _ b: T) -> T { T.elementwiseProduct(a, b) }
}

enum DivFunction<T: ArithmeticElement>: BinaryFunction {
    @inline(__always) static func apply(_ a: T, _ b: T) -> T { T.elementwiseQuotient(a, b) }
}

/// Exponents of Pow: every numeric input type converts to Double; integers also exactly.
protocol PowExponent {
    var exponentValue: Double { get }
    /// The exponent as an integer when the type is an integer type.
    var integerExponent: Int64? { get }
}

extension Float: PowExponent {
    @inline(__always) var exponentValue: Double { Double(self) }
    @inline(__always) var integerExponent: Int64? { nil }
}

extension Double: PowExponent {
    @inline(__always) var exponentValue: Double { self }
    @inline(__always) var integerExponent: Int64? { nil }
}

extension Int64: PowExponent {
    @inline(__always) var exponentValue: Double { Double(self) }
    @inline(__always) var integerExponent: Int64? { self }
}

extension Int32: PowExponent {
    @inline(__always) var exponentValue: Double { Double(self) }
    @inline(__always) var integerExponent: Int64? { Int64(self) }
}

/// Bases of Pow; the result has the base's type.
protocol PowBase {
    static func power<E: PowExponent>(_ base: Self, _ exponent: E) -> Self
}

extension Float: PowBase {
    @inline(__always) static func power<E: PowExponent>(_ base: Float, _ exponent: E) -> Float {
        if let float = exponent as? Float { return powf(base, float) }
        return Float(pow(Double(base), exponent.exponentValue))
    }
}

extension Double: PowBase {
    @inline(__always) static func power<E: PowExponent>(_ base: Double, _ exponent: E) -> Double {
        pow(base, exponent.exponentValue)
    }
}

extension Int64: PowBase {
    @inline(__always) static func power<E: PowExponent>(_ base: Int64, _ exponent: E) -> Int64 {
        integerPower(base, exponent)
    }
}

extension Int32: PowBase {
    @inline(__always) static func power<E: PowExponent>(_ base: Int32, _ exponent: E) -> Int32 {
        integerPower(base, exponent)
    }
}

/// Integer base: exact wrapping power for integer exponents, else the real power truncated
/// toward zero (as NumPy's `astype` does), saturating instead of trapping.
@inline(__always)
private func integerPower<T: FixedWidthInteger & SignedInteger, E: PowExponent>(
    _ base: T, _ exponent: E
) -> T {
    guard var remaining = exponent.integerExponent else {
        let real = pow(Double(base), exponent.exponentValue)
        if real.isNaN { return 0 }
        if real >= Double(T.max) { return T.max }
        if real <= Double(T.min) { return T.min }
        return T(real)
    }
    if remaining < 0 {
        // Only ±1 have integral negative powers; others truncate to 0.
        if base == 1 { return 1 }
        if base == -1 { return remaining & 1 == 0 ? 1 : base }
        return 0
    }
    var result: T = 1
    var factor = base
    while remaining > 0 {
        if remaining & 1 == 1 { result = result &* factor }
        factor = factor &* factor
        remaining >>= 1
    }
    return result
}

enum PowFunction<Base: PowBase, Exponent: PowExponent>: BinaryFunction {
    @inline(__always) static func apply(_ a: Base, _ b: Exponent) -> Base { Base.power(a, b) }
}

/// x² is by far the most common float Pow (variance in layer norms): a multiply, not a libm call.
enum SquareFunction: BinaryFunction {
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * a }
}
