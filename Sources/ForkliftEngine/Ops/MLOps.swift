/// Kernels of this group, by op name.
enum MLOps {
    static let factories: [String: KernelFactory] = [:]
}
