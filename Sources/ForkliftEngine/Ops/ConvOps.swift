/// Kernels of this group, by op name.
enum ConvOps {
    static let factories: [String: KernelFactory] = [:]
}
