/// Kernels of this group, by op name.
enum ReductionOps {
    static let factories: [String: KernelFactory] = [:]
}
