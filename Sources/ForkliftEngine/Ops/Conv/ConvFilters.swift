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

    /// Y = act(bias + W_g · B) for group `g` over the columns of `space`; `bias` holds the
    /// group's M/g biases, or is nil.
    ///
    /// Columns go in blocks, packed into tiles of 16 contiguous columns (K×16 floats each), so
    /// that the kernel reads B as one sequential stream whatever the input's row stride, and a
    /// tile can span two images when an image has fewer positions than a multiple of 16 (7×7,
    /// 14×14). Within a block each panel sweeps the tiles in order: the panel stays in L1 and
    /// the stores run along 6 output rows, as sgemm's would.
    func multiply(group g: Int, _ space: ColumnSpace, bias: UnsafePointer<Float>?, activation: Activation?) {
        let (low, high) = activation?.bounds ?? (-Float.infinity, Float.infinity)
        let width = ConvTile.columns
        let panels = UnsafePointer(storage.floats) + g * panelsPerGroup * k * ConvTile.rows
        let columns = space.count
        let block = min(max(width, Self.blockFloats / k / width * width), (columns + width - 1) / width * width)
        let rowCount = panelsPerGroup * ConvTile.rows
        let packed = UnsafeMutablePointer<Float>.allocate(capacity: k * block + rowCount + ConvTile.rows * width + 2)
        defer { packed.deallocate() }
        let biases = packed + k * block
        let staging = biases + rowCount
        let bounds = staging + ConvTile.rows * width
        (bounds[0], bounds[1]) = (low, high)
        for r in 0..<rowCount { biases[r] = r < groupOut ? bias?[r] ?? 0 : 0 }
        var j0 = 0
        while j0 < columns {
            let count = min(block, columns - j0)
            let tiles = (count + width - 1) / width
            for t in 0..<tiles {
                space.pack(packed + t * k * width, k: k, columns: (j0 + t * width)..<min(j0 + (t + 1) * width, j0 + count))
            }
            for p in 0..<panelsPerGroup {
                let row0 = p * ConvTile.rows
                let panel = panels + p * k * ConvTile.rows
                let rows = min(ConvTile.rows, groupOut - row0)
                for t in 0..<tiles {
                    let c0 = j0 + t * width
                    let cols = min(width, j0 + count - c0)
                    let tile = UnsafePointer(packed + t * k * width)
                    if rows == ConvTile.rows, cols == width, let out = space.output(c0, count: cols) {
                        ConvTile.run(
                            panel: panel, b: tile, k: k, y: out + row0 * space.ldy, ldy: space.ldy, bias: biases + row0,
                            bounds: bounds)
                    } else {
                        // An edge tile: fewer filters or columns than a tile, or two images.
                        ConvTile.run(panel: panel, b: tile, k: k, y: staging, ldy: width, bias: biases + row0, bounds: bounds)
                        space.scatter(staging, rows: row0..<(row0 + rows), columns: c0..<(c0 + cols))
                    }
                }
            }
            j0 += count
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

    /// Copies columns `range` (at most 16) of B's K rows into `tile`, 16 floats per row, zero past the range.
    @inline(__always)
    func pack(_ tile: UnsafeMutablePointer<Float>, k: Int, columns range: Range<Int>) {
        let width = ConvTile.columns
        var c = range.lowerBound
        while c < range.upperBound {
            let (image, j) = c.quotientAndRemainder(dividingBy: perImage)
            let n = min(range.upperBound - c, perImage - j)
            let source = b + image * bImage + j
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

    /// Where columns `c0 ..< c0 + count` start in Y when they lie in one image, else nil.
    @inline(__always)
    func output(_ c0: Int, count: Int) -> UnsafeMutablePointer<Float>? {
        let (image, j) = c0.quotientAndRemainder(dividingBy: perImage)
        return j + count <= perImage ? y + image * yImage + j : nil
    }

    /// Writes `rows` of a 16-column staging tile (rows 16 apart, row 0 = `rows.lowerBound`)
    /// to columns `columns` of Y, image by image.
    func scatter(_ staging: UnsafePointer<Float>, rows: Range<Int>, columns: Range<Int>) {
        var c = columns.lowerBound
        while c < columns.upperBound {
            let (image, j) = c.quotientAndRemainder(dividingBy: perImage)
            let n = min(columns.upperBound - c, perImage - j)
            let out = y + image * yImage + j
            for r in rows {
                let (from, to) = (staging + (r - rows.lowerBound) * ConvTile.columns + (c - columns.lowerBound), out + r * ldy)
                for i in 0..<n { to[i] = from[i] }
            }
            c += n
        }
    }
}
