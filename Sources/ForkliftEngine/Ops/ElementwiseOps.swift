/// Kernels of this group, by op name. The kernels live in `Elementwise/`.
enum ElementwiseOps {
    static let factories: [String: KernelFactory] = {
        var factories: [String: KernelFactory] = [:]
        for operation in [BinaryKernel.Operation.add, .sub, .mul, .div, .pow] {
            factories[operation.rawValue] = BinaryKernel.make(operation)
        }
        let unary = [
            "Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Sqrt", "Exp",
            "Erf",
        ]
        for name in unary { factories[name] = UnaryKernel.make(name) }
        factories["Clip"] = ClipKernel.factory
        factories["Cast"] = CastKernel.castFactory
        factories["CastLike"] = CastKernel.castLikeFactory
        return factories
    }()
}
