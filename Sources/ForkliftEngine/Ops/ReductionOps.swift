/// Kernels of this group, by op name.
enum ReductionOps {
    static let factories: [String: KernelFactory] = [
        "Softmax": SoftmaxKernel.make(log: false),
        "LogSoftmax": SoftmaxKernel.make(log: true),
        "ReduceMean": ReduceMeanKernel.make,
        "ArgMax": ArgMaxKernel.make,
    ]
}
