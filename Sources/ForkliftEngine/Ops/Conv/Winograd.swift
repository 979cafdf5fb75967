import CForkliftKernels

/// Constant 3×3 filters of a stride-1, ungrouped 2-D convolution, transformed once at load for
/// Winograd's F(2×2, 3×3): 16 products of [M × C]·[C × tiles] replace the 9·C-deep product of
/// im2col, 2.25× fewer multiply-adds, and no im2col matrix nine times the input's size.
///
/// ResNet's 3×3 layers are most of its work; on im2col + sgemm they reached 82–87% of the
/// sgemm figure, below onnxruntime's blocked kernels, and at 2 threads im2col ran on one.
/// The kernels are AVX-512 (`Winograd.c`); without it the convolution stays on `ConvGemm`.
///
/// U[ξ] = (G g Gᵀ)[ξ] is stored in panels of 8 filters, u[ξ][M/8][C][8], zero past the last.
struct WinogradFilters: @unchecked Sendable {
    let outChannels: Int
    let inChannels: Int
    /// Filters rounded up to a whole panel.
    let rows: Int
    /// Owns the transformed filters.
    let storage: Tensor

    static let isSupported = forklift_kernels_have_avx512() != 0

    /// Fewest input channels worth the transforms: with few, the product is too shallow to
    /// repay them.
    static let minInChannels = 16

    /// Whether a Conv node with weights `weight` and these attributes is one this path runs.
    static func applies(to weight: Tensor, group: Int, window: WindowAttributes) -> Bool {
        guard isSupported, group == 1, weight.dtype == .float32, weight.shape.count == 4,
            weight.shape[2] == 3, weight.shape[3] == 3, weight.shape[1] >= minInChannels
        else { return false }
        let ones = { (values: [Int]?) in values.map { $0.allSatisfy { $0 == 1 } } ?? true }
        return ones(window.strides) && ones(window.dilations) && (window.kernel.map { $0 == [3, 3] } ?? true)
    }

    init(_ weight: Tensor) {
        outChannels = weight.shape[0]
        inChannels = weight.shape[1]
        rows = (outChannels + 7) / 8 * 8
        storage = Tensor(dtype: .float32, shape: [16, rows, inChannels])
        let u = storage.floats
        u.update(repeating: 0, count: 16 * rows * inChannels)
        let g = weight.floats
        for m in 0..<outChannels {
            for c in 0..<inChannels {
                let transformed = Self.transform(g + (m * inChannels + c) * 9)
                let offset = (m / 8) * inChannels * 8 + c * 8 + m % 8
                for xi in 0..<16 { u[xi * rows * inChannels + offset] = transformed[xi] }
            }
        }
    }

    /// G g Gᵀ of one 3×3 filter, with G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1].
    private static func transform(_ g: UnsafePointer<Float>) -> [Float] {
        // Rows of G·g (4×3), then each row times Gᵀ.
        var left = [Float](repeating: 0, count: 12)
        for j in 0..<3 {
            let (a, b, c) = (g[j], g[3 + j], g[6 + j])
            left[j] = a
            left[3 + j] = (a + b + c) / 2
            left[6 + j] = (a - b + c) / 2
            left[9 + j] = c
        }
        var u = [Float](repeating: 0, count: 16)
        for i in 0..<4 {
            let (a, b, c) = (left[3 * i], left[3 * i + 1], left[3 * i + 2])
            u[4 * i] = a
            u[4 * i + 1] = (a + b + c) / 2
            u[4 * i + 2] = (a - b + c) / 2
            u[4 * i + 3] = c
        }
        return u
    }

    /// Floats of transformed input per block: about the L2 cache of the machines we target, so
    /// that the product reads back what the input transform just wrote.
    static let blockFloats = 1 << 18

    /// Y = act(conv(X) + bias) for a batch. `window` must be 2-D 3×3 with stride and dilation 1.
    ///
    /// Blocks of tiles are independent from input to output, so threads take whole blocks: each
    /// transforms its tiles' input, multiplies and transforms back, with its V and m in cache.
    func run(
        x: UnsafePointer<Float>, batch: Int, window w: Window, bias: UnsafePointer<Float>?, activation: Activation?,
        y: UnsafeMutablePointer<Float>
    ) {
        let (height, width) = (w.input[1], w.input[2])
        let (outHeight, outWidth) = (w.output[1], w.output[2])
        let tileRows = (outHeight + 1) / 2
        let tileCols = (outWidth + 1) / 2
        let tiles = batch * tileRows * tileCols
        guard tiles > 0 else { return }
        let threads = ParallelPool.shared.threads
        let wanted = threads > 1 ? 4 * threads : 1
        let byCache = max(16, Self.blockFloats / (16 * max(inChannels, rows)) / 16 * 16)
        let byThreads = max(16, ((tiles + wanted - 1) / wanted + 15) / 16 * 16)
        let block = min(byCache, byThreads)
        let blocks = (tiles + block - 1) / block
        let (low, high) = activation?.bounds ?? (-Float.infinity, Float.infinity)
        let (padTop, padLeft) = (w.padBegin[1], w.padBegin[2])
        let u = UnsafePointer(storage.floats)
        let panelsMax = block / 16
        ParallelPool.shared.forEachChunk(count: blocks, parts: min(blocks, wanted)) { range in
            let v = UnsafeMutablePointer<Float>.allocate(capacity: 16 * panelsMax * 16 * inChannels)
            let m = UnsafeMutablePointer<Float>.allocate(capacity: 16 * panelsMax * 16 * rows)
            defer {
                v.deallocate()
                m.deallocate()
            }
            for index in range {
                let t0 = index * block
                let count = min(block, tiles - t0)
                let panels = (count + 15) / 16
                forklift_winograd_input_avx512(
                    x, inChannels, height, width, padTop, padLeft, tileRows, tileCols, t0, count, v)
                forklift_winograd_multiply_avx512(u, v, rows, inChannels, panels, m)
                forklift_winograd_output_avx512(
                    m, rows, outChannels, bias, low, high, y, outHeight, outWidth, tileRows, tileCols, t0, count)
            }
        }
    }
}
