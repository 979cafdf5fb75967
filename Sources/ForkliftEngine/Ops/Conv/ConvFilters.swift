import CForkliftKernels

/// Constant Conv filters W [M, C/g, k…] packed once at load into panels of `ConvTile.rows`
/// output channels, so that a run multiplies them by the input (or its im2col chunk) with
/// `ConvTile` and never repacks them, as sgemm does on every call.
///
/// Panel p of group g holds filters g·M/g + 6p ..< +6 as K consecutive runs of 6 floats
/// (K = C/g·kernel volume), zero past the group's last filter.
struct ConvFilters: @unchecked Sendable {
    let group: Int
    let groupOut: Int
    let k: Int
    let panelsPerGroup: Int
    /// Owns the panels.
    let storage: Tensor

    /// Most K of a convolution with a spatial kernel (im2col) that gets packed filters. Above
    /// it W stays as it is, for sgemm: ResNet-18's 3×3 layers (K = 576…4608) measured no faster
    /// on the tiles. Its 7×7 stem (K = 147) did (about 1.2× at batch 8), but the tiles are
    /// Swift, ~100× slower in an unoptimized build, where the stem alone then took 2 s a sample
    /// and the test suite's ResNet-18 pool missed its deadline; EfficientNet's stem (K = 27) stays.
    static let maxIm2colDepth = 128

    /// Whether constant filters W [M, C/g, k…] are worth packing: not depthwise (one input
    /// channel per group: `Depthwise` reads W as it is), and 1×1 or K at most `maxIm2colDepth`.
    static func applies(to weight: Tensor, group: Int) -> Bool {
        guard weight.rank >= 3 else { return false }
        if weight.shape[1] == 1, group > 1 { return false }
        let volume = weight.shape.dropFirst(2).reduce(1, *)
        return volume == 1 || weight.shape[1] * volume <= maxIm2colDepth
    }

    init?(_ weight: Tensor, group: Int) {
        guard weight.dtype == .float32, weight.rank >= 3, group >= 1, weight.shape[0] % group == 0 else { return nil }
        let k = weight.shape.dropFirst().reduce(1, *)
        let groupOut = weight.shape[0] / group
        guard k > 0, groupOut > 0 else { return nil }
        self.group = group
        self.groupOut = groupOut
        self.k = k
        panelsPerGroup = (groupOut + ConvTile.rows - 1) / ConvTile.rows
        storage = Tensor(dtype: .float32, shape: [group * panelsPerGroup * k * ConvTile.rows])
        let w = weight.floats
        let dst = storage.floats
        for g in 0..<group {
            for p in 0..<panelsPerGroup {
                let panel = dst + (g * panelsPerGroup + p) * k * ConvTile.rows
                for r in 0..<ConvTile.rows {
                    let filter = p * ConvTile.rows + r
                    let source = w + (g * groupOut + filter) * k
                    for kk in 0..<k { panel[kk * ConvTile.rows + r] = filter < groupOut ? source[kk] : 0 }
                }
            }
        }
    }

    /// Floats of packed B per column block: the block stays in L2 while every panel passes over it.
    static let blockFloats = 1 << 16
    /// Most of K that one pass of the tile kernel covers: a panel slice (24 bytes a k) and a
    /// tile slice (64 bytes a k) then about fill L1 (32 KiB). Larger K goes in balanced slices,
    /// at the cost of a pass over partial sums; 384 keeps EfficientNet's K = 320 in one pass.
    static let maxDepth = 384
    /// The same for the AVX-512 tile, which reads B from L2 at a quarter of the rate per
    /// multiply-add: EfficientNet's K = 672 and 1152 then go in one pass, with no partial sums,
    /// in blocks of twice the floats (L2 is 1 MiB), so that a 7×7 image (49 columns) is one block.
    static let maxWideDepth = 2048
    static let wideBlockFloats = 1 << 17
    /// Multiply-adds below which a product stays on one thread.
    static let minParallelWork = 1 << 18

    /// Y = act(bias + W_g · B) for group `g` over the columns of `space`; `bias` holds the
    /// group's M/g biases, or is nil.
    ///
    /// Columns go in blocks, packed into tiles of 16 contiguous columns, so that the kernel
    /// reads B as one sequential stream whatever the input's row stride, and a tile can span
    /// two images when an image has fewer positions than a multiple of 16 (7×7, 14×14). Within
    /// a block each panel sweeps the tiles in order: the panel stays in L1 and the stores run
    /// along 6 output rows, as sgemm's would. Threads take column blocks, or panels of a block
    /// when there are too few blocks. `wide` false keeps to the AVX2 tile (what CPUs without
    /// AVX-512 run; tests use it to cover it here).
    func multiply(
        group g: Int, _ space: ColumnSpace, bias: UnsafePointer<Float>?, activation: Activation?, wide: Bool = CPUFeatures.hasAVX512
    ) {
        let width = ConvTile.columns
        let maxDepth = wide ? Self.maxWideDepth : Self.maxDepth
        let slices = (k + maxDepth - 1) / maxDepth
        let depth = (k + slices - 1) / slices
        let columns = space.count
        let threads = ParallelPool.shared.threads
        let parallel = threads > 1 && groupOut * k * columns >= Self.minParallelWork
        // A few parts per thread, so that a thread that gets its core late leaves less behind.
        let wanted = parallel ? 4 * threads : 1
        let blockFloats = wide ? Self.wideBlockFloats : Self.blockFloats
        var block = min(max(width, blockFloats / depth / width * width), (columns + width - 1) / width * width)
        if parallel {
            // Narrower blocks rather than split panels (each part packs its own block of B): about
            // one per part, of at least four tiles, as even as whole tiles allow. Equal blocks of
            // ⌈tiles / parts⌉ left a 14×14 image (13 tiles) as 4 + 4 + 4 + 1: two threads then
            // took two blocks and one.
            let tiles = (columns + width - 1) / width
            let perBlock = max(4, (tiles + wanted - 1) / wanted)
            let count = (tiles + perBlock - 1) / perBlock
            block = min(block, (tiles + count - 1) / count * width)
        }
        let blocks = (columns + block - 1) / block
        // Too few blocks for the parts (small images at batch 1): the panels split as well.
        let panelSplit = blocks >= wanted ? 1 : min(panelsPerGroup, (wanted + blocks - 1) / blocks)
        let units = blocks * panelSplit
        let parts = min(wanted, units)
        let (low, high) = activation?.bounds ?? (-Float.infinity, Float.infinity)
        let rowCount = panelsPerGroup * ConvTile.rows
        let biases = UnsafeMutablePointer<Float>.allocate(capacity: rowCount)
        defer { biases.deallocate() }
        for r in 0..<rowCount { biases[r] = r < groupOut ? bias?[r] ?? 0 : 0 }
        let pass = BlockPass(
            filters: self, panels: UnsafePointer(storage.floats) + g * panelsPerGroup * k * ConvTile.rows, space: space,
            depth: depth, block: block, biases: UnsafePointer(biases), low: low, high: high, wide: wide)
        ParallelPool.shared.forEachChunk(count: units, parts: parts) { range in
            pass.withBuffers { buffers in
                for unit in range {
                    let (b, split) = unit.quotientAndRemainder(dividingBy: panelSplit)
                    let j0 = b * block
                    pass.run(
                        columns: j0..<min(j0 + block, columns), panels: ParallelPool.slice(panelsPerGroup, parts: panelSplit, part: split),
                        buffers)
                }
            }
        }
    }
}

/// One group's product cut into column blocks and depth slices (see `ConvFilters.multiply`).
private struct BlockPass: @unchecked Sendable {
    let filters: ConvFilters
    let panels: UnsafePointer<Float>
    let space: ColumnSpace
    /// K per slice, and columns per block.
    let depth: Int
    let block: Int
    /// One bias per panel row, zero past the group's filters.
    let biases: UnsafePointer<Float>
    let low: Float
    let high: Float
    /// Whether the AVX-512 tile (six rows × up to four tiles of 16 columns) runs.
    let wide: Bool

    /// A thread's scratch: packed B tiles, an edge tile, the bounds the kernel reads (the
    /// activation's, and none), zero biases, and with several depth slices the block's partial sums.
    struct Buffers {
        var packed: UnsafeMutablePointer<Float>
        var staging: UnsafeMutablePointer<Float>
        var bounds: UnsafeMutablePointer<Float>
        var open: UnsafeMutablePointer<Float>
        var zeros: UnsafeMutablePointer<Float>
        var sums: UnsafeMutablePointer<Float>
    }

    var sliced: Bool { depth < filters.k }

    func withBuffers(_ body: (Buffers) -> Void) {
        let tile = ConvTile.rows * ConvTile.columns
        let sumCount = sliced ? filters.panelsPerGroup * ConvTile.rows * block : 0
        let small = 4 + ConvTile.rows
        // Aligned to a cache line, as are then all packed tiles (k·64 bytes each) and the staging
        // tile: the AVX-512 tile's 64-byte loads of B would otherwise each straddle two lines.
        let count = depth * block + tile + small + sumCount
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
        defer { raw.deallocate() }
        let memory = raw.bindMemory(to: Float.self, capacity: count)
        let bounds = memory + depth * block + tile
        (bounds[0], bounds[1], bounds[2], bounds[3]) = (low, high, -.infinity, .infinity)
        (bounds + 4).initialize(repeating: 0, count: ConvTile.rows)
        body(
            Buffers(
                packed: memory, staging: memory + depth * block, bounds: bounds, open: bounds + 2, zeros: bounds + 4,
                sums: bounds + small))
    }

    /// Output columns `columns` (one block) for the panels `panels`.
    func run(columns: Range<Int>, panels: Range<Int>, _ buffers: Buffers) {
        let k = filters.k
        let width = ConvTile.columns
        let tiles = (columns.count + width - 1) / width
        let groupOut = filters.groupOut
        guard sliced else {
            if wide, let source = space.input(columns.lowerBound, count: columns.count),
                let out = space.output(columns.lowerBound, count: columns.count)
            {
                runInPlace(source: source, out: out, columns: columns.count, panels: panels, buffers)
                return
            }
            pack(buffers.packed, depth: 0..<k, columns: columns)
            for p in panels {
                let row0 = p * ConvTile.rows
                let panel = self.panels + p * k * ConvTile.rows
                let rows = min(ConvTile.rows, groupOut - row0)
                var t = 0
                while t < tiles {
                    let c0 = columns.lowerBound + t * width
                    let cols = min(width, columns.upperBound - c0)
                    let tile = UnsafePointer(buffers.packed + t * k * width)
                    // Whole tiles in one image, up to four at once on AVX-512.
                    let run = rows == ConvTile.rows ? directTiles(from: t, of: tiles, columns: columns) : 0
                    if run > 0, let out = space.output(c0, count: run * width) {
                        tile6(
                            panel: panel, b: tile, k: k, bStride: width, tileStride: k * width, tiles: run, y: out + row0 * space.ldy,
                            ldy: space.ldy, bias: biases + row0, bounds: buffers.bounds, accumulate: false)
                        t += run
                        continue
                    }
                    // An edge tile: fewer filters or columns than a tile, or two images.
                    if wide, cols <= ConvTile.narrowColumns, let out = space.output(c0, count: cols) {
                        forklift_conv_narrow6_avx512(
                            panel, tile, k, width, Int32(cols), Int32(rows), out + row0 * space.ldy, space.ldy, biases + row0,
                            buffers.bounds)
                        t += 1
                        continue
                    }
                    tile6(
                        panel: panel, b: tile, k: k, bStride: width, tileStride: k * width, tiles: 1, y: buffers.staging, ldy: width,
                        bias: biases + row0, bounds: buffers.bounds, accumulate: false)
                    space.scatter(
                        buffers.staging, ld: width, rows: row0..<(row0 + rows), columns: c0..<(c0 + cols), bias: nil, low: -.infinity,
                        high: .infinity)
                    t += 1
                }
            }
            return
        }
        // Several depth slices: whole tiles of partial sums accumulate in `sums` (rows `block`
        // apart), and bias and activation apply as they are scattered to Y.
        var k0 = 0
        while k0 < k {
            let kd = min(depth, k - k0)
            pack(buffers.packed, depth: k0..<(k0 + kd), columns: columns)
            for p in panels {
                let panel = self.panels + p * k * ConvTile.rows + k0 * ConvTile.rows
                let sums = buffers.sums + p * ConvTile.rows * block
                var t = 0
                while t < tiles {
                    let run = wide ? min(ConvTile.wideTiles, tiles - t) : 1
                    tile6(
                        panel: panel, b: buffers.packed + t * kd * width, k: kd, bStride: width, tileStride: kd * width, tiles: run,
                        y: sums + t * width, ldy: block, bias: buffers.zeros, bounds: buffers.open, accumulate: k0 > 0)
                    t += run
                }
            }
            k0 += kd
        }
        let row0 = panels.lowerBound * ConvTile.rows
        let row1 = min(panels.upperBound * ConvTile.rows, groupOut)
        space.scatter(
            buffers.sums + row0 * block, ld: block, rows: row0..<row1, columns: columns, bias: biases + row0, low: low, high: high)
    }

    /// The AVX-512 product of a block inside one image, B read where it lies (rows `ldb` apart)
    /// from `source` and Y written from `out`: packing it cost as much as the product for small
    /// K (a copy of B against 6·K multiply-adds a column per panel) and was memory-bound at two
    /// threads. Whole tiles go four at a time with no per-tile image lookups; a last tile of at
    /// most 8 columns goes to the narrow kernel, one of 9–15 is packed and staged.
    private func runInPlace(
        source: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, columns: Int, panels: Range<Int>, _ buffers: Buffers
    ) {
        let (k, width, ldb, ldy) = (filters.k, ConvTile.columns, space.ldb, space.ldy)
        let whole = columns / width
        let last = columns - whole * width
        let edge = UnsafePointer(buffers.packed)
        if last > ConvTile.narrowColumns {
            for kk in 0..<k {
                let (from, to) = (source + kk * ldb + whole * width, buffers.packed + kk * width)
                for i in 0..<width { to[i] = i < last ? from[i] : 0 }
            }
        }
        for p in panels {
            let row0 = p * ConvTile.rows
            let panel = self.panels + p * k * ConvTile.rows
            let rows = min(ConvTile.rows, filters.groupOut - row0)
            let y = out + row0 * ldy
            var t = 0
            while rows == ConvTile.rows, t < whole {
                let run = min(ConvTile.wideTiles, whole - t)
                forklift_conv_tile6_avx512(
                    panel, source + t * width, k, ldb, width, Int32(run), y + t * width, ldy, biases + row0, buffers.bounds, 0)
                t += run
            }
            // Fewer filters than a panel: whole tiles one at a time through the staging tile.
            while t < whole {
                forklift_conv_tile6_avx512(
                    panel, source + t * width, k, ldb, width, 1, buffers.staging, width, biases + row0, buffers.bounds, 0)
                stage(buffers.staging, rows: rows, columns: width, to: y + t * width)
                t += 1
            }
            if last == 0 { continue }
            if last <= ConvTile.narrowColumns {
                forklift_conv_narrow6_avx512(
                    panel, source + whole * width, k, ldb, Int32(last), Int32(rows), y + whole * width, ldy, biases + row0, buffers.bounds)
            } else {
                forklift_conv_tile6_avx512(panel, edge, k, width, k * width, 1, buffers.staging, width, biases + row0, buffers.bounds, 0)
                stage(buffers.staging, rows: rows, columns: last, to: y + whole * width)
            }
        }
    }

    /// Copies `rows` × `columns` of a staging tile (rows 16 apart) to Y at `y` (rows `ldy` apart).
    private func stage(_ staging: UnsafePointer<Float>, rows: Int, columns: Int, to y: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            (y + r * space.ldy).update(from: staging + r * ConvTile.columns, count: columns)
        }
    }

    /// How many tiles from tile `t` (of `tiles` in `columns`) are whole (16 columns) and lie in
    /// one image, so that one kernel call writes them to Y: up to four on AVX-512, else one.
    private func directTiles(from t: Int, of tiles: Int, columns: Range<Int>) -> Int {
        let width = ConvTile.columns
        let c0 = columns.lowerBound + t * width
        let most = wide ? min(ConvTile.wideTiles, tiles - t) : 1
        var run = 0
        while run < most, c0 + (run + 1) * width <= columns.upperBound, space.output(c0, count: (run + 1) * width) != nil { run += 1 }
        return run
    }

    /// Six rows × `tiles` tiles of B (16 floats per k, `bStride` apart, tiles `tileStride`
    /// apart): the AVX-512 kernel, or one AVX2 tile at a time (packed tiles only: bStride 16,
    /// tileStride 16·k).
    @inline(__always)
    private func tile6(
        panel: UnsafePointer<Float>, b: UnsafePointer<Float>, k: Int, bStride: Int, tileStride: Int, tiles: Int,
        y: UnsafeMutablePointer<Float>, ldy: Int, bias: UnsafePointer<Float>, bounds: UnsafePointer<Float>, accumulate: Bool
    ) {
        let width = ConvTile.columns
        if wide {
            forklift_conv_tile6_avx512(panel, b, k, bStride, tileStride, Int32(tiles), y, ldy, bias, bounds, accumulate ? 1 : 0)
            return
        }
        for t in 0..<tiles {
            ConvTile.run(
                panel: panel, b: b + t * k * width, k: k, y: y + t * width, ldy: ldy, bias: bias, bounds: bounds, accumulate: accumulate)
        }
    }

    /// Packs rows `depth` of B, columns `columns`, into consecutive tiles of `depth.count`×16.
    private func pack(_ packed: UnsafeMutablePointer<Float>, depth: Range<Int>, columns: Range<Int>) {
        let width = ConvTile.columns
        var t = 0
        for c0 in stride(from: columns.lowerBound, to: columns.upperBound, by: width) {
            space.pack(packed + t * depth.count * width, depth: depth, columns: c0..<min(c0 + width, columns.upperBound))
            t += 1
        }
    }
}

/// The columns of a convolution's product: `images` runs of `perImage` columns. Column
/// `i·perImage + j` reads B rows at `b + i·bImage + j` (rows `ldb` apart) and writes Y rows at
/// `y + i·yImage + j` (rows `ldy` apart).
struct ColumnSpace {
    var b: UnsafePointer<Float>
    var ldb: Int
    var bImage: Int
    var y: UnsafeMutablePointer<Float>
    var ldy: Int
    var yImage: Int
    var perImage: Int
    var images: Int

    var count: Int { perImage * images }

    /// Copies columns `range` (at most 16) of B's rows `depth` into `tile`, 16 floats per row,
    /// zero past the range.
    @inline(__always)
    func pack(_ tile: UnsafeMutablePointer<Float>, depth: Range<Int>, columns range: Range<Int>) {
        let k = depth.count
        let width = ConvTile.columns
        var c = range.lowerBound
        while c < range.upperBound {
            let (image, j) = c.quotientAndRemainder(dividingBy: perImage)
            let n = min(range.upperBound - c, perImage - j)
            let source = b + image * bImage + depth.lowerBound * ldb + j
            let dst = tile + (c - range.lowerBound)
            if n == width {
                for kk in 0..<k {
                    UnsafeMutableRawPointer(dst + kk * width).storeBytes(
                        of: UnsafeRawPointer(source + kk * ldb).loadUnaligned(as: SIMD16<Float>.self), as: SIMD16<Float>.self)
                }
            } else {
                for kk in 0..<k {
                    let (from, to) = (source + kk * ldb, dst + kk * width)
                    for i in 0..<n { to[i] = from[i] }
                }
            }
            c += n
        }
        let filled = range.count
        if filled < width {
            for kk in 0..<k { (tile + kk * width + filled).update(repeating: 0, count: width - filled) }
        }
    }

    /// Where columns `c0 ..< c0 + count` start in B when they lie in one image, else nil.
    @inline(__always)
    func input(_ c0: Int, count: Int) -> UnsafePointer<Float>? {
        let (image, j) = c0.quotientAndRemainder(dividingBy: perImage)
        return j + count <= perImage ? b + image * bImage + j : nil
    }

    /// Where columns `c0 ..< c0 + count` start in Y when they lie in one image, else nil.
    @inline(__always)
    func output(_ c0: Int, count: Int) -> UnsafeMutablePointer<Float>? {
        let (image, j) = c0.quotientAndRemainder(dividingBy: perImage)
        return j + count <= perImage ? y + image * yImage + j : nil
    }

    /// Y[rows, columns] = clamp(source + bias) (bias nil: + 0), from `source` whose row 0 is
    /// Y's row `rows.lowerBound` and column 0 Y's column `columns.lowerBound`, rows `ld` apart;
    /// image by image.
    func scatter(
        _ source: UnsafePointer<Float>, ld: Int, rows: Range<Int>, columns: Range<Int>, bias: UnsafePointer<Float>?, low: Float,
        high: Float
    ) {
        var c = columns.lowerBound
        while c < columns.upperBound {
            let (image, j) = c.quotientAndRemainder(dividingBy: perImage)
            let n = min(columns.upperBound - c, perImage - j)
            let out = y + image * yImage + j
            for r in rows {
                let row = r - rows.lowerBound
                let (from, to) = (source + row * ld + (c - columns.lowerBound), out + r * ldy)
                let b = bias?[row] ?? 0
                for i in 0..<n { to[i] = Swift.min(Swift.max(from[i] + b, low), high) }
            }
            c += n
        }
    }
}
