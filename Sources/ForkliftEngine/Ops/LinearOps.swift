/// Kernels of this group, by op name.
enum LinearOps {
    static let factories: [String: KernelFactory] = [
        "Gemm": GemmKernel.make,
        "MatMul": MatMulKernel.make,
    ]
}
