/// A destination type of Cast, built from either a floating-point or an integer source value.
protocol CastDestination {
    /// Floats truncate toward zero into integer types; NaN and out-of-range values (undefined in
    /// ONNX) saturate through Int64 and then wrap, as a C cast on common hardware does.
    static func fromFloatingPoint(_ value: Double) -> Self
    static func fromInteger(_ value: Int64) -> Self
}

/// A source type of Cast.
protocol CastSource {
    func converted<D: CastDestination>(to: D.Type) -> D
}

/// ONNX bool as stored: one byte, 0 or 1.
struct BoolByte: CastDestination, CastSource {
    var raw: UInt8

    @inline(__always) static func fromFloatingPoint(_ value: Double) -> BoolByte {
        BoolByte(raw: value != 0 ? 1 : 0)
    }
    @inline(__always) static func fromInteger(_ value: Int64) -> BoolByte {
        BoolByte(raw: value != 0 ? 1 : 0)
    }
    @inline(__always) func converted<D: CastDestination>(to: D.Type) -> D {
        D.fromInteger(raw != 0 ? 1 : 0)
    }
}

extension Float: CastDestination, CastSource {
    @inline(__always) static func fromFloatingPoint(_ value: Double) -> Float { Float(value) }
    @inline(__always) static func fromInteger(_ value: Int64) -> Float { Float(value) }
    @inline(__always) func converted<D: CastDestination>(to: D.Type) -> D {
        D.fromFloatingPoint(Double(self))
    }
}

extension Double: CastDestination, CastSource {
    @inline(__always) static func fromFloatingPoint(_ value: Double) -> Double { value }
    @inline(__always) static func fromInteger(_ value: Int64) -> Double { Double(value) }
    @inline(__always) func converted<D: CastDestination>(to: D.Type) -> D {
        D.fromFloatingPoint(self)
    }
}

@inline(__always)
private func truncatedInt64(_ value: Double) -> Int64 {
    if value.isNaN { return 0 }
    // 2^63 is exactly representable; every double below it converts without trapping.
    if value >= 9_223_372_036_854_775_808.0 { return .max }
    if value <= -9_223_372_036_854_775_808.0 { return .min }
    return Int64(value)
}

protocol IntegerCastElement: CastDestination, CastSource, FixedWidthInteger {}

extension IntegerCastElement {
    @inline(__always) static func fromFloatingPoint(_ value: Double) -> Self {
        Self(truncatingIfNeeded: truncatedInt64(value))
    }
    @inline(__always) static func fromInteger(_ value: Int64) -> Self {
        Self(truncatingIfNeeded: value)
    }
    @inline(__always) func converted<D: CastDestination>(to: D.Type) -> D {
        D.fromInteger(Int64(self))
    }
}

extension Int64: IntegerCastElement {}
extension Int32: IntegerCastElement {}
extension Int8: IntegerCastElement {}
extension UInt8: IntegerCastElement {}

/// Cast (fixed target dtype) and CastLike (target dtype of input 1).
struct CastKernel: Kernel {
    /// nil for CastLike.
    let target: DType?

    static let castFactory: KernelFactory = { ctx throws(KernelError) in
        try ctx.expect(inputs: 1...1)
        try ctx.allowAttributes(ctx.opset >= 19 ? ["to", "saturate"] : ["to"])
        guard let code = try ctx.int("to") else { throw .invalid("attribute 'to' is required") }
        return CastKernel(target: try target(code))
    }

    static let castLikeFactory: KernelFactory = { ctx throws(KernelError) in
        try ctx.expect(inputs: 2...2)
        try ctx.allowAttributes(ctx.opset >= 19 ? ["saturate"] : [])
        return CastKernel(target: nil)
    }

    /// `saturate` only affects float8 targets, which the engine lacks anyway.
    private static func target(_ code: Int) throws(KernelError) -> DType {
        guard let raw = Int32(exactly: code), let dtype = DType(rawValue: raw) else {
            throw .unsupported(
                "Cast to \(Int32(exactly: code).map(DType.onnxName) ?? "type code \(code)")")
        }
        return dtype
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        [TensorType(target ?? inputs[1].dtype, inputs[0].shape)]
    }

    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError) {
        let x = inputs[0]
        let y = outputs[0]
        if x.dtype == y.dtype {
            y.raw.copyMemory(from: x.raw, byteCount: x.byteCount)
            return
        }
        switch x.dtype {
        case .float32: Self.cast(Float.self, x, y)
        case .float64: Self.cast(Double.self, x, y)
        case .int64: Self.cast(Int64.self, x, y)
        case .int32: Self.cast(Int32.self, x, y)
        case .int8: Self.cast(Int8.self, x, y)
        case .uint8: Self.cast(UInt8.self, x, y)
        case .bool: Self.cast(BoolByte.self, x, y)
        }
    }

    private static func cast<S: CastSource>(_ source: S.Type, _ x: Tensor, _ y: Tensor) {
        switch y.dtype {
        case .float32: convert(x.pointer(as: S.self), y.pointer(as: Float.self), x.count)
        case .float64: convert(x.pointer(as: S.self), y.pointer(as: Double.self), x.count)
        case .int64: convert(x.pointer(as: S.self), y.pointer(as: Int64.self), x.count)
        case .int32: convert(x.pointer(as: S.self), y.pointer(as: Int32.self), x.count)
        case .int8: convert(x.pointer(as: S.self), y.pointer(as: Int8.self), x.count)
        case .uint8: convert(x.pointer(as: S.self), y.pointer(as: UInt8.self), x.count)
        case .bool: convert(x.pointer(as: S.self), y.pointer(as: BoolByte.self), x.count)
        }
    }

    private static func convert<S: CastSource, D: CastDestination>(
        _ x: UnsafeMutablePointer<S>, _ y: UnsafeMutablePointer<D>, _ count: Int
    ) {
        for i in 0..<count { y[i] = x[i].converted(to: D.self) }
    }
}
