import CForkliftKernels

/// What this CPU runs, checked once at first use: the engine's AVX-512 kernels (panel rows, conv
/// tiles, depthwise planes, Winograd) may run only where `hasAVX512` holds.
enum CPUFeatures {
    static let hasAVX512 = forklift_kernels_have_avx512() != 0
}
