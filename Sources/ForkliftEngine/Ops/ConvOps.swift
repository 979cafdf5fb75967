/// Kernels of this group, by op name: convolution, pooling and inference batch normalization.
/// The kernels themselves live in Ops/Conv/.
enum ConvOps {
    static let factories: [String: KernelFactory] = [
        "Conv": ConvKernel.make,
        "MaxPool": MaxPoolKernel.make,
        "AveragePool": AveragePoolKernel.make,
        "GlobalAveragePool": GlobalAveragePoolKernel.make,
        "BatchNormalization": BatchNormKernel.make,
    ]
}
