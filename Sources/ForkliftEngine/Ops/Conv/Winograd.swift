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

    /// Fewest input channels worth the transforms: with few, the product is too shallow to
    /// repay them.
    static let minInChannels = 16

    /// Most bytes of transformed filters per convolution. They take 16/9 of W's size, and the
    /// model keeps them instead of W for as long as it is loaded, in every forked worker's
    /// shared pages: with no cap ResNet-18 would hold 76 MB for a 47 MB file. Up to 256×256
    /// filters (4 MiB) it holds 54 MB; its 512-channel layers, 28 MB of W, stay on im2col,
    /// at about 12% of its throughput.
    static let maxTransformedBytes = 4 << 20

    /// Whether a Conv node with weights `weight` and these attributes is one this path runs.
    static func applies(to weight: Tensor, group: Int, window: WindowAttributes) -> Bool {
        guard CPUFeatures.hasAVX512, group == 1, weight.dtype == .float32, weight.shape.count == 4,
            weight.shape[2] == 3, weight.shape[3] == 3, weight.shape[1] >= minInChannels
        else { return false }
        let rows = (weight.shape[0] + 7) / 8 * 8
        guard 16 * rows * weight.shape[1] * MemoryLayout<Float>.size <= maxTransformedBytes else { return false }
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
    /// With fewer blocks than threads (the deep layers at batch 1), the threads share each
    /// block's product instead, by panels of filters.
    func run(
        x: UnsafePointer<Float>, batch: Int, window w: Window, bias: UnsafePointer<Float>?, activation: Activation?,
        y: UnsafeMutablePointer<Float>
    ) {
        let shape = TileShape(window: w, batch: batch)
        guard shape.tiles > 0 else { return }
        let threads = ParallelPool.shared.threads
        let wanted = threads > 1 ? 4 * threads : 1
        let byCache = max(16, Self.blockFloats / (16 * max(inChannels, rows)) / 16 * 16)
        let byThreads = max(16, ((shape.tiles + wanted - 1) / wanted + 15) / 16 * 16)
        let block = min(byCache, byThreads)
        let blocks = (shape.tiles + block - 1) / block
        let pass = BlockPass(
            filters: self, x: x, shape: shape, bias: bias, bounds: activation?.bounds ?? (-.infinity, .infinity), y: y)
        if blocks < threads {
            pass.withBuffers(block: block) { v, m in
                for index in 0..<blocks { pass.run(tiles: index * block..<min((index + 1) * block, shape.tiles), v, m, split: wanted) }
            }
            return
        }
        ParallelPool.shared.forEachChunk(count: blocks, parts: min(blocks, wanted)) { range in
            pass.withBuffers(block: block) { v, m in
                for index in range { pass.run(tiles: index * block..<min((index + 1) * block, shape.tiles), v, m, split: 1) }
            }
        }
    }
}

/// Where a batch's 2×2 output tiles lie: `tileRows` × `tileCols` per image, over the input and
/// output sizes and the padding of a 3×3 stride-1 window.
private struct TileShape {
    let height: Int
    let width: Int
    let outHeight: Int
    let outWidth: Int
    let padTop: Int
    let padLeft: Int
    let tileRows: Int
    let tileCols: Int
    let tiles: Int

    init(window w: Window, batch: Int) {
        (height, width) = (w.input[1], w.input[2])
        (outHeight, outWidth) = (w.output[1], w.output[2])
        (padTop, padLeft) = (w.padBegin[1], w.padBegin[2])
        tileRows = (outHeight + 1) / 2
        tileCols = (outWidth + 1) / 2
        tiles = batch * tileRows * tileCols
    }
}

/// One convolution's blocks of tiles: transform in, multiply, transform out.
private struct BlockPass: @unchecked Sendable {
    let filters: WinogradFilters
    let x: UnsafePointer<Float>
    let shape: TileShape
    let bias: UnsafePointer<Float>?
    let bounds: (low: Float, high: Float)
    let y: UnsafeMutablePointer<Float>

    /// Calls `body` with scratch for the transformed input and the products of `block` tiles.
    func withBuffers(block: Int, _ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        let panelFloats = 16 * ((block + 15) / 16 * 16)
        let v = UnsafeMutablePointer<Float>.allocate(capacity: panelFloats * filters.inChannels)
        let m = UnsafeMutablePointer<Float>.allocate(capacity: panelFloats * filters.rows)
        defer {
            v.deallocate()
            m.deallocate()
        }
        body(v, m)
    }

    /// Output tiles `tiles`, with the product split into `split` parts by panels of filters.
    func run(tiles: Range<Int>, _ v: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>, split: Int) {
        let s = shape
        let (t0, count) = (tiles.lowerBound, tiles.count)
        let panels = (count + 15) / 16
        let (rows, k) = (filters.rows, filters.inChannels)
        let u = UnsafePointer(filters.storage.floats)
        forklift_winograd_input_avx512(x, k, s.height, s.width, s.padTop, s.padLeft, s.tileRows, s.tileCols, t0, count, v)
        if split > 1 {
            let filterPanels = rows / 8
            ParallelPool.shared.forEachChunk(count: filterPanels, parts: min(split, filterPanels)) { range in
                forklift_winograd_multiply_avx512(u, v, rows, 8 * range.lowerBound, 8 * range.upperBound, k, panels, m)
            }
        } else {
            forklift_winograd_multiply_avx512(u, v, rows, 0, rows, k, panels, m)
        }
        forklift_winograd_output_avx512(
            m, rows, filters.outChannels, bias, bounds.low, bounds.high, y, s.outHeight, s.outWidth, s.tileRows, s.tileCols, t0,
            count)
    }
}
