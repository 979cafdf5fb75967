/// How a binary op walks its broadcast output: the output as a sequence of contiguous runs of
/// `inner` elements, in each of which every input is either contiguous (step 1) or one repeated
/// element (step 0). Adjacent axes with the same broadcast pattern are merged first, so that
/// same-shape and scalar operands become one run and "[N,C,H,W] + [C,1,1]" becomes runs of H·W
/// with a constant right operand.
struct BroadcastPlan {
    /// Sizes and input strides of the merged axes outside the inner run, outermost first.
    private(set) var outer: [Int] = []
    private(set) var aStrides: [Int] = []
    private(set) var bStrides: [Int] = []
    private(set) var inner = 1
    private(set) var aStep = 0
    private(set) var bStep = 0
    let total: Int

    /// `a` and `b` must broadcast to `out` (checked by the caller).
    init(a: [Int], b: [Int], out: [Int]) {
        total = out.reduce(1, *)
        let rank = out.count
        let paddedA = [Int](repeating: 1, count: rank - a.count) + a
        let paddedB = [Int](repeating: 1, count: rank - b.count) + b
        // Axes from innermost to outermost, each as (size, stride in a, stride in b).
        var axes: [(size: Int, a: Int, b: Int)] = []
        var strideA = 1
        var strideB = 1
        for axis in stride(from: rank - 1, through: 0, by: -1) {
            let size = out[axis]
            let sa = paddedA[axis] == 1 ? 0 : strideA
            let sb = paddedB[axis] == 1 ? 0 : strideB
            strideA *= paddedA[axis]
            strideB *= paddedB[axis]
            if size == 1 { continue }
            if let last = axes.last, sa == last.a * last.size, sb == last.b * last.size {
                axes[axes.count - 1] = (last.size * size, last.a, last.b)
            } else {
                axes.append((size, sa, sb))
            }
        }
        guard let innermost = axes.first else {
            // A single element.
            return
        }
        inner = innermost.size
        aStep = innermost.a
        bStep = innermost.b
        for axis in axes.dropFirst().reversed() {
            outer.append(axis.size)
            aStrides.append(axis.a)
            bStrides.append(axis.b)
        }
    }

    /// Calls `body(aOffset, bOffset, outOffset)` once per inner run, in output order.
    @inline(__always)
    func forEachRun(_ body: (Int, Int, Int) -> Void) {
        guard total > 0 else { return }
        let runs = total / inner
        var index = [Int](repeating: 0, count: outer.count)
        var aOffset = 0
        var bOffset = 0
        var outOffset = 0
        for _ in 0..<runs {
            body(aOffset, bOffset, outOffset)
            outOffset += inner
            var axis = outer.count - 1
            while axis >= 0 {
                index[axis] += 1
                aOffset += aStrides[axis]
                bOffset += bStrides[axis]
                if index[axis] < outer[axis] { break }
                aOffset -= aStrides[axis] * outer[axis]
                bOffset -= bStrides[axis] * outer[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }
}

/// An elementwise binary function, as a type so that the loops below specialise and inline it.
protocol BinaryFunction {
    associatedtype Left
    associatedtype Right
    associatedtype Result
    static func apply(_ a: Left, _ b: Right) -> Result
}

extension BinaryFunction {
    /// One run: separate loops for each step pattern keep the inner loops free of index
    /// arithmetic, so that LLVM vectorises them.
    @inline(__always)
    static func run(
        _ count: Int, _ a: UnsafePointer<Left>, _ aStep: Int, _ b: UnsafePointer<Right>,
        _ bStep: Int,
        _ out: UnsafeMutablePointer<Result>
    ) {
        if aStep == 1 && bStep == 1 {
            for i in 0..<count { out[i] = apply(a[i], b[i]) }
        } else if aStep == 1 {
            let y = b[0]
            for i in 0..<count { out[i] = apply(a[i], y) }
        } else if bStep == 1 {
            let x = a[0]
            for i in 0..<count { out[i] = apply(x, b[i]) }
        } else {
            let value = apply(a[0], b[0])
            for i in 0..<count { out[i] = value }
        }
    }

    /// Computes the whole broadcast output.
    static func broadcast(_ plan: BroadcastPlan, _ a: Tensor, _ b: Tensor, _ out: Tensor) {
        let pa = UnsafePointer(a.pointer(as: Left.self))
        let pb = UnsafePointer(b.pointer(as: Right.self))
        let po = out.pointer(as: Result.self)
        let inner = plan.inner
        let aStep = plan.aStep
        let bStep = plan.bStep
        plan.forEachRun { aOffset, bOffset, outOffset in
            run(inner, pa + aOffset, aStep, pb + bOffset, bStep, po + outOffset)
        }
    }
}
