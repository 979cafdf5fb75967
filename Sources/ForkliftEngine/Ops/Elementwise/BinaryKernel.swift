/// Add, Sub, Mul, Div and Pow with multidirectional (NumPy) broadcasting.
struct BinaryKernel: Kernel {
    enum Operation: String, Sendable {
        case add = "Add"
        case sub = "Sub"
        case mul = "Mul"
        case div = "Div"
        case pow = "Pow"
    }

    /// Opset < 7 broadcasting: B's shape lines up with A's from `axis` (default: trailing axes).
    struct LegacyBroadcast: Sendable {
        var enabled: Bool
        var axis: Int?
    }

    let operation: Operation
    /// Set only for opsets before 7, where broadcasting was opt-in and unidirectional.
    let legacy: LegacyBroadcast?
    let activation: Activation?

    static let arithmeticTypes: Set<DType> = [.float32, .float64, .int64, .int32, .int8, .uint8]
    static let powTypes: Set<DType> = [.float32, .float64, .int64, .int32]

    static func make(_ operation: Operation) -> KernelFactory {
        { ctx throws(KernelError) in
            try ctx.expect(inputs: 2...2)
            var legacy: LegacyBroadcast?
            if ctx.opset < 7 && operation != .pow {
                try ctx.allowAttributes(["broadcast", "axis", "consumed_inputs"])
                legacy = LegacyBroadcast(
                    enabled: try ctx.int("broadcast", default: 0) != 0, axis: try ctx.int("axis"))
            } else {
                try ctx.allowAttributes([])
            }
            return BinaryKernel(
                operation: operation, legacy: legacy, activation: ctx.fusedActivation)
        }
    }

    /// The shape that B takes part in broadcasting with, after legacy alignment.
    private func effectiveRightShape(_ a: [Int], _ b: [Int]) throws(KernelError) -> [Int] {
        guard let legacy else { return b }
        guard legacy.enabled else {
            guard a == b else {
                throw .invalid(
                    "input B \(Shape.describe(b)) must match A \(Shape.describe(a)) when 'broadcast' is 0"
                )
            }
            return b
        }
        let axis = legacy.axis.map { $0 < 0 ? $0 + a.count : $0 } ?? (a.count - b.count)
        guard axis >= 0, axis + b.count <= a.count else {
            throw .invalid(
                "input B \(Shape.describe(b)) does not fit A \(Shape.describe(a)) at axis \(legacy.axis ?? axis)"
            )
        }
        return [Int](repeating: 1, count: axis) + b
            + [Int](repeating: 1, count: a.count - axis - b.count)
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        let a = inputs[0]
        let b = inputs[1]
        if operation == .pow {
            try a.require(Self.powTypes, "input X")
            try b.require(Self.powTypes, "input Y")
        } else {
            try a.require(Self.arithmeticTypes, "input A")
            guard a.dtype == b.dtype else {
                throw .invalid("input A has dtype \(a.dtype) but B has \(b.dtype)")
            }
        }
        let right = try effectiveRightShape(a.shape, b.shape)
        guard let out = Shape.broadcast(a.shape, right), Shape.elementCount(out) != nil else {
            throw .invalid(
                "inputs \(Shape.describe(a.shape)) and \(Shape.describe(b.shape)) do not broadcast")
        }
        if legacy != nil && out != a.shape {
            throw .invalid(
                "input B \(Shape.describe(b.shape)) would broadcast A \(Shape.describe(a.shape))")
        }
        return [TensorType(a.dtype, out)]
    }

    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError) {
        let a = inputs[0]
        let b = inputs[1]
        let out = outputs[0]
        let plan = BroadcastPlan(
            a: a.shape, b: try effectiveRightShape(a.shape, b.shape), out: out.shape)
        switch (operation, a.dtype) {
        case (.pow, _): try Self.power(plan, a, b, out)
        case (_, .float32): try arithmetic(Float.self, plan, a, b, out)
        case (_, .float64): try arithmetic(Double.self, plan, a, b, out)
        case (_, .int64): try arithmetic(Int64.self, plan, a, b, out)
        case (_, .int32): try arithmetic(Int32.self, plan, a, b, out)
        case (_, .int8): try arithmetic(Int8.self, plan, a, b, out)
        case (_, .uint8): try arithmetic(UInt8.self, plan, a, b, out)
        case (_, .bool): throw .invalid("input A has dtype bool")
        }
        if out.dtype == .float32 { activation.apply(out.floats, count: out.count) }
    }

    private func arithmetic<T: ArithmeticElement>(
        _ type: T.Type, _ plan: BroadcastPlan, _ a: Tensor, _ b: Tensor, _ out: Tensor
    ) throws(KernelError) {
        guard a.dtype == b.dtype else {
            throw .invalid("input A has dtype \(a.dtype) but B has \(b.dtype)")
        }
        switch operation {
        case .add: AddFunction<T>.broadcast(plan, a, b, out)
        case .sub: SubFunction<T>.broadcast(plan, a, b, out)
        case .mul: MulFunction<T>.broadcast(plan, a, b, out)
        case .div: DivFunction<T>.broadcast(plan, a, b, out)
        case .pow: break
        }
    }

    private static func power(_ plan: BroadcastPlan, _ a: Tensor, _ b: Tensor, _ out: Tensor)
        throws(KernelError)
    {
        switch a.dtype {
        case .float32:
            if b.dtype == .float32, b.count == 1, b.floats[0] == 2 {
                SquareFunction.broadcast(plan, a, b, out)
            } else {
                try power(Float.self, plan, a, b, out)
            }
        case .float64: try power(Double.self, plan, a, b, out)
        case .int64: try power(Int64.self, plan, a, b, out)
        case .int32: try power(Int32.self, plan, a, b, out)
        default: throw .unsupported("input X has dtype \(a.dtype)")
        }
    }

    private static func power<Base: PowBase>(
        _ base: Base.Type, _ plan: BroadcastPlan, _ a: Tensor, _ b: Tensor, _ out: Tensor
    ) throws(KernelError) {
        switch b.dtype {
        case .float32: PowFunction<Base, Float>.broadcast(plan, a, b, out)
        case .float64: PowFunction<Base, Double>.broadcast(plan, a, b, out)
        case .int64: PowFunction<Base, Int64>.broadcast(plan, a, b, out)
        case .int32: PowFunction<Base, Int32>.broadcast(plan, a, b, out)
        default: throw .unsupported("input Y has dtype \(b.dtype)")
        }
    }
}
