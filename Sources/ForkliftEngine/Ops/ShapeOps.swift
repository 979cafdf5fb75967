/// Kernels of this group, by op name.
enum ShapeOps {
    static let factories: [String: KernelFactory] = [
        "Flatten": FlattenKernel.make,
        "Reshape": ReshapeKernel.make,
        "Squeeze": SqueezeKernel.make(unsqueeze: false),
        "Unsqueeze": SqueezeKernel.make(unsqueeze: true),
        "Identity": IdentityKernel.make,
        "Dropout": DropoutKernel.make,
        "Transpose": TransposeKernel.make,
        "Concat": ConcatKernel.make,
        "Gather": GatherKernel.make,
        "Pad": PadKernel.make,
        "Shape": ShapeKernel.make,
    ]
}
