/// The taps of a one-axis resize with a triangle (bilinear) filter, antialiased when shrinking:
/// the filter's support widens with the scale factor, as in Pillow's `Image.resize(BILINEAR)`.
/// Output pixel i of `outputSize` is centred at (i + 0.5) × in/out in input coordinates; its taps
/// are the input pixels within the support, weighted by the triangle and normalised to sum 1.
///
/// Only the outputs in `range` (the crop window) get weights: the rest are never computed.
struct FilterWeights {
    /// First input index of each output's taps.
    let starts: [Int]
    /// Number of taps of each output.
    let counts: [Int]
    /// `stride` weights per output, the first `counts[i]` of them used.
    let weights: [Float]
    let stride: Int

    init(inputSize: Int, outputSize: Int, range: Range<Int>) {
        let scale = Double(inputSize) / Double(outputSize)
        let filterScale = max(scale, 1)
        let support = filterScale  // the triangle's support is 1 at scale 1
        let stride = Int(support.rounded(.up)) * 2 + 1
        var starts: [Int] = []
        var counts: [Int] = []
        var weights = [Float](repeating: 0, count: stride * range.count)
        var taps = [Double](repeating: 0, count: stride)
        for (row, output) in range.enumerated() {
            let center = (Double(output) + 0.5) * scale
            // Truncation toward zero, then clamping, as Pillow rounds the window's ends.
            let first = max(Int(center - support + 0.5), 0)
            let end = min(Int(center + support + 0.5), inputSize)
            let count = max(end - first, 0)
            var sum = 0.0
            for tap in 0..<count {
                let distance = abs((Double(first + tap) - center + 0.5) / filterScale)
                taps[tap] = max(0, 1 - distance)
                sum += taps[tap]
            }
            for tap in 0..<count { weights[row * stride + tap] = Float(sum > 0 ? taps[tap] / sum : 0) }
            starts.append(first)
            counts.append(count)
        }
        self.starts = starts
        self.counts = counts
        self.weights = weights
        self.stride = stride
    }

    /// Input indices any output reads: the rows a vertical pass needs from the horizontal one.
    var inputSpan: Range<Int> {
        guard let low = starts.min() else { return 0..<0 }
        let high = zip(starts, counts).map { $0 + $1 }.max() ?? low
        return low..<max(high, low)
    }
}
