import Foundation

/// libm functions for the floating-point types that the unary kernels compute in.
protocol UnaryMathElement: BinaryFloatingPoint {
    static func elementwiseExp(_ x: Self) -> Self
    static func elementwiseTanh(_ x: Self) -> Self
    static func elementwiseErf(_ x: Self) -> Self
    static func elementwiseSigmoid(_ x: Self) -> Self
}

extension Float: UnaryMathElement {
    @inline(__always) static func elementwiseExp(_ x: Float) -> Float { expf(x) }
    @inline(__always) static func elementwiseTanh(_ x: Float) -> Float { FastMath.tanh(x) }
    @inline(__always) static func elementwiseErf(_ x: Float) -> Float { erff(x) }
    @inline(__always) static func elementwiseSigmoid(_ x: Float) -> Float { FastMath.sigmoid(x) }
}

extension Double: UnaryMathElement {
    @inline(__always) static func elementwiseExp(_ x: Double) -> Double { exp(x) }
    @inline(__always) static func elementwiseTanh(_ x: Double) -> Double { tanh(x) }
    @inline(__always) static func elementwiseErf(_ x: Double) -> Double { erf(x) }
    @inline(__always) static func elementwiseSigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }
}

/// Relu, LeakyRelu, Sigmoid, Tanh, HardSigmoid, HardSwish, Sqrt, Exp and Erf.
struct UnaryKernel: Kernel {
    enum Function: Sendable {
        case relu
        case leakyRelu(alpha: Float)
        case sigmoid
        case tanh
        case hardSigmoid(alpha: Float, beta: Float)
        case hardSwish
        case sqrt
        case exp
        case erf
    }

    let function: Function

    static func make(_ name: String) -> KernelFactory {
        { ctx throws(KernelError) in
            try ctx.expect(inputs: 1...1)
            // Opsets before 6 carried a `consumed_inputs` hint, which has no effect on the result.
            let legacy: Set<String> = ctx.opset < 6 ? ["consumed_inputs"] : []
            let function: Function
            switch name {
            case "Relu": function = .relu
            case "LeakyRelu": function = .leakyRelu(alpha: try ctx.float("alpha", default: 0.01))
            case "Sigmoid": function = .sigmoid
            case "Tanh": function = .tanh
            case "HardSigmoid":
                function = .hardSigmoid(
                    alpha: try ctx.float("alpha", default: 0.2),
                    beta: try ctx.float("beta", default: 0.5))
            case "HardSwish": function = .hardSwish
            case "Sqrt": function = .sqrt
            case "Exp": function = .exp
            default: function = .erf
            }
            switch function {
            case .leakyRelu: try ctx.allowAttributes(legacy.union(["alpha"]))
            case .hardSigmoid: try ctx.allowAttributes(legacy.union(["alpha", "beta"]))
            default: try ctx.allowAttributes(legacy)
            }
            return UnaryKernel(function: function)
        }
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        if case .relu = function {
            try inputs[0].require([.float32, .float64, .int64, .int32, .int8], "input X")
        } else {
            try inputs[0].require([.float32, .float64], "input X")
        }
        return [inputs[0]]
    }

    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError) {
        let x = inputs[0]
        let y = outputs[0]
        switch x.dtype {
        case .float32: Self.apply(function, x.floats, y.floats, x.count)
        case .float64:
            Self.apply(function, x.pointer(as: Double.self), y.pointer(as: Double.self), x.count)
        case .int64: Self.integerRelu(x.int64s, y.int64s, x.count)
        case .int32: Self.integerRelu(x.pointer(as: Int32.self), y.pointer(as: Int32.self), x.count)
        case .int8: Self.integerRelu(x.pointer(as: Int8.self), y.pointer(as: Int8.self), x.count)
        default: throw .unsupported("input X has dtype \(x.dtype)")
        }
    }

    /// Only Relu accepts integers (checked in `outputTypes`).
    private static func integerRelu<T: FixedWidthInteger>(
        _ x: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>, _ count: Int
    ) {
        for i in 0..<count { y[i] = max(x[i], 0) }
    }

    private static func apply<T: UnaryMathElement>(
        _ function: Function, _ x: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>,
        _ count: Int
    ) {
        switch function {
        case .relu:
            for i in 0..<count { y[i] = max(x[i], 0) }
        case .leakyRelu(let alpha):
            let a = T(alpha)
            for i in 0..<count {
                let v = x[i]
                y[i] = v < 0 ? v * a : v
            }
        case .sigmoid:
            for i in 0..<count { y[i] = T.elementwiseSigmoid(x[i]) }
        case .tanh:
            for i in 0..<count { y[i] = T.elementwiseTanh(x[i]) }
        case .hardSigmoid(let alpha, let beta):
            let a = T(alpha)
            let b = T(beta)
            for i in 0..<count { y[i] = min(max(x[i] * a + b, 0), 1) }
        case .hardSwish:
            let sixth = 1 / T(6)
            for i in 0..<count {
                let v = x[i]
                y[i] = v * min(max(v * sixth + 0.5, 0), 1)
            }
        case .sqrt:
            for i in 0..<count { y[i] = x[i].squareRoot() }
        case .exp:
            for i in 0..<count { y[i] = T.elementwiseExp(x[i]) }
        case .erf:
            for i in 0..<count { y[i] = T.elementwiseErf(x[i]) }
        }
    }
}

/// Element types of Clip, with their widest bounds.
protocol ClipElement: Comparable {
    static var lowestBound: Self { get }
    static var highestBound: Self { get }
    /// A bound given as a float attribute (opset < 11, float inputs only).
    static func fromAttribute(_ value: Float) -> Self?
}

extension FixedWidthInteger {
    static func fromAttribute(_ value: Float) -> Self? { nil }
}

extension Float: ClipElement {
    static var lowestBound: Float { -.infinity }
    static var highestBound: Float { .infinity }
    static func fromAttribute(_ value: Float) -> Float? { value }
}

extension Double: ClipElement {
    static var lowestBound: Double { -.infinity }
    static var highestBound: Double { .infinity }
    static func fromAttribute(_ value: Float) -> Double? { Double(value) }
}

extension Int64: ClipElement {
    static var lowestBound: Int64 { .min }
    static var highestBound: Int64 { .max }
}

extension Int32: ClipElement {
    static var lowestBound: Int32 { .min }
    static var highestBound: Int32 { .max }
}

extension Int8: ClipElement {
    static var lowestBound: Int8 { .min }
    static var highestBound: Int8 { .max }
}

extension UInt8: ClipElement {
    static var lowestBound: UInt8 { .min }
    static var highestBound: UInt8 { .max }
}

/// Clip: bounds from attributes before opset 11, from optional scalar inputs since.
struct ClipKernel: Kernel {
    /// Attribute bounds (opset < 11); nil means the bounds come from inputs 1 and 2.
    let attributeBounds: (min: Float, max: Float)?

    static let factory: KernelFactory = { ctx throws(KernelError) in
        if ctx.opset < 11 {
            try ctx.expect(inputs: 1...1)
            try ctx.allowAttributes(
                ctx.opset < 6 ? ["min", "max", "consumed_inputs"] : ["min", "max"])
            let low = try ctx.float("min", default: -Float.greatestFiniteMagnitude)
            let high = try ctx.float("max", default: Float.greatestFiniteMagnitude)
            return ClipKernel(attributeBounds: (low, high))
        }
        try ctx.expect(inputs: 1...3)
        try ctx.allowAttributes([])
        return ClipKernel(attributeBounds: nil)
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        let x = inputs[0]
        if attributeBounds != nil {
            try x.require([.float32, .float64], "input")
        } else {
            try x.require([.float32, .float64, .int64, .int32, .int8, .uint8], "input")
            for (index, role) in [(1, "min"), (2, "max")]
            where index < inputs.count && !inputs[index].isAbsent {
                guard inputs[index].dtype == x.dtype else {
                    throw .invalid(
                        "input '\(role)' has dtype \(inputs[index].dtype), input has \(x.dtype)")
                }
                guard Shape.elementCount(inputs[index].shape) == 1 else {
                    throw .invalid(
                        "input '\(role)' must be a scalar, has shape \(Shape.describe(inputs[index].shape))"
                    )
                }
            }
        }
        return [x]
    }

    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError) {
        switch inputs[0].dtype {
        case .float32: try clip(Float.self, inputs, outputs[0])
        case .float64: try clip(Double.self, inputs, outputs[0])
        case .int64: try clip(Int64.self, inputs, outputs[0])
        case .int32: try clip(Int32.self, inputs, outputs[0])
        case .int8: try clip(Int8.self, inputs, outputs[0])
        case .uint8: try clip(UInt8.self, inputs, outputs[0])
        case .bool: throw .unsupported("input has dtype bool")
        }
    }

    private func bound<T: ClipElement>(_ inputs: [Tensor], _ index: Int, default value: T)
        throws(KernelError) -> T
    {
        guard index < inputs.count, !inputs[index].isAbsent else { return value }
        guard inputs[index].count == 1 else {
            throw .invalid("input \(index) of Clip must be a scalar")
        }
        return inputs[index].pointer(as: T.self)[0]
    }

    private func clip<T: ClipElement>(_ type: T.Type, _ inputs: [Tensor], _ out: Tensor)
        throws(KernelError)
    {
        let low: T
        let high: T
        if let (attributeLow, attributeHigh) = attributeBounds {
            guard let attributeLow = T.fromAttribute(attributeLow),
                let attributeHigh = T.fromAttribute(attributeHigh)
            else {
                throw .unsupported("attribute bounds with input dtype \(inputs[0].dtype)")
            }
            low = attributeLow
            high = attributeHigh
        } else {
            low = try bound(inputs, 1, default: T.lowestBound)
            high = try bound(inputs, 2, default: T.highestBound)
        }
        Self.clamp(inputs[0].pointer(as: T.self), out.pointer(as: T.self), out.count, low, high)
    }

    @inline(__always)
    private static func clamp<T: ClipElement>(
        _ x: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>, _ count: Int, _ low: T,
        _ high: T
    ) {
        for i in 0..<count { y[i] = min(max(x[i], low), high) }
    }
}
