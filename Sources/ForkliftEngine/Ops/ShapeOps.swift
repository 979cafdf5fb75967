/// Kernels of this group, by op name.
enum ShapeOps {
    static let factories: [String: KernelFactory] = [:]
}
