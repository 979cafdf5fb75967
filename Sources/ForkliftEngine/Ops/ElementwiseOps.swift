/// Kernels of this group, by op name.
enum ElementwiseOps {
    static let factories: [String: KernelFactory] = [:]
}
