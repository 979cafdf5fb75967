/// Kernels of this group, by op name.
enum LinearOps {
    static let factories: [String: KernelFactory] = [:]
}
