/// The microkernel of `ConvFilters`: one tile of 6 output channels × 16 output positions,
/// `act(bias + panel · B)`, in twelve AVX2 accumulators (registers: 12 + 2 for B + 1 broadcast).
///
/// The panel holds the 6 filters' weights k-major (6 consecutive floats per k); the tile of B
/// holds 16 consecutive floats per k. Both are read as one sequential stream.
/// (Needs the engine compiled for AVX2/FMA, `-target-cpu haswell`; otherwise still correct.)
/// On AVX-512 `forklift_conv_tile6_avx512` takes its place, over up to `wideTiles` tiles at once.
enum ConvTile {
    static let rows = 6
    static let columns = 16
    /// Tiles of 16 columns that one call of the AVX-512 kernel covers.
    static let wideTiles = 4
    /// Most columns of an edge tile that the AVX-512 narrow kernel takes, a product per column:
    /// it costs about a sixth of a whole tile per column.
    static let narrowColumns = 8

    /// Stores all 6×16 results into `y` (rows `ldy` apart), or adds the product to what `y`
    /// holds when `accumulate`; callers with an edge tile pass a staging tile and copy out what
    /// exists. `bias` holds 6 floats, `bounds` the activation's
    /// low and high (±∞ without one).
    ///
    /// The loop needs 15 of the 16 vector registers, so nothing else may stay live across it:
    /// the function is not inlined into its callers' loops, and the bounds come by pointer, not
    /// in registers. (Either way the allocator spills an accumulator inside the k loop, which
    /// costs about half the throughput.)
    @inline(never)
    static func run(
        panel: UnsafePointer<Float>, b: UnsafePointer<Float>, k: Int, y: UnsafeMutablePointer<Float>, ldy: Int,
        bias: UnsafePointer<Float>, bounds: UnsafePointer<Float>, accumulate: Bool
    ) {
        // A SIMD16 is two AVX2 registers: each row is two accumulators.
        var c0 = SIMD16<Float>()
        var c1 = c0
        var c2 = c0
        var c3 = c0
        var c4 = c0
        var c5 = c0
        if accumulate {
            let row = UnsafeRawPointer(y)
            let step = ldy * MemoryLayout<Float>.stride
            c0 = row.loadUnaligned(as: SIMD16<Float>.self)
            c1 = row.loadUnaligned(fromByteOffset: step, as: SIMD16<Float>.self)
            c2 = row.loadUnaligned(fromByteOffset: 2 * step, as: SIMD16<Float>.self)
            c3 = row.loadUnaligned(fromByteOffset: 3 * step, as: SIMD16<Float>.self)
            c4 = row.loadUnaligned(fromByteOffset: 4 * step, as: SIMD16<Float>.self)
            c5 = row.loadUnaligned(fromByteOffset: 5 * step, as: SIMD16<Float>.self)
        }
        var a = panel
        var bp = UnsafeRawPointer(b)
        for _ in 0..<k {
            let row = bp.loadUnaligned(as: SIMD16<Float>.self)
            bp += 64
            c0.addProduct(SIMD16(repeating: a[0]), row)
            c1.addProduct(SIMD16(repeating: a[1]), row)
            c2.addProduct(SIMD16(repeating: a[2]), row)
            c3.addProduct(SIMD16(repeating: a[3]), row)
            c4.addProduct(SIMD16(repeating: a[4]), row)
            c5.addProduct(SIMD16(repeating: a[5]), row)
            a += rows
        }
        // The rows go through the stack (store-to-load forwarded) so that one loop writes them.
        let l = SIMD16<Float>(repeating: bounds[0])
        let h = SIMD16<Float>(repeating: bounds[1])
        withUnsafeBytes(of: (c0, c1, c2, c3, c4, c5)) { sums in
            for r in 0..<rows {
                let v = sums.load(fromByteOffset: r * 64, as: SIMD16<Float>.self) + SIMD16(repeating: bias[r])
                UnsafeMutableRawPointer(y + r * ldy).storeBytes(of: clamp(v, l, h), as: SIMD16<Float>.self)
            }
        }
    }

    /// Compare-and-replace compiles to vmaxps/vminps; SIMD's clamped() is a scalar loop.
    @inline(__always)
    private static func clamp(_ value: SIMD16<Float>, _ low: SIMD16<Float>, _ high: SIMD16<Float>) -> SIMD16<Float> {
        var v = value
        v.replace(with: low, where: v .< low)
        v.replace(with: high, where: v .> high)
        return v
    }
}
