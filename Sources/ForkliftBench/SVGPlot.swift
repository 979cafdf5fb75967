import Foundation

/// Draws runs as a self-contained SVG: throughput against concurrency (or offered rate), and
/// p50/p99 latency against throughput. Axes carry units and there is a legend; no dependency.
public struct SVGPlot {
    public var title: String
    public var series: [PlotSeries]
    public var note: String?

    static let palette = ["#1f6fb4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
    static let panelWidth = 520.0
    static let height = 440.0
    static let margin = (left: 76.0, right: 24.0, top: 64.0, bottom: 62.0)

    public init(title: String, series: [PlotSeries], note: String? = nil) {
        self.title = title
        self.series = series
        self.note = note
    }

    public func render() -> String {
        var svg = SVGWriter(width: 2 * Self.panelWidth, height: Self.height + (note == nil ? 0 : 18))
        svg.text(title, x: Self.panelWidth, y: 24, size: 17, anchor: "middle", weight: "bold")
        if let note { svg.text(note, x: Self.panelWidth, y: Self.height + 6, size: 11, anchor: "middle", color: "#555") }
        drawThroughput(&svg)
        drawLatency(&svg)
        return svg.finish()
    }

    private var openLoop: Bool { series.first?.isOpenLoop ?? false }

    private func drawThroughput(_ svg: inout SVGWriter) {
        let xs = series.flatMap { $0.points.map(\.x) }
        let measured = series.flatMap { $0.points.map(\.requestsPerSecond) }.max() ?? 1
        // A ceiling far above what was measured (tiny models) would flatten the measured lines: it is named, not drawn.
        let drawCeiling = series.flatMap { $0.points.compactMap(\.computeCeiling) }.allSatisfy { $0 <= 5 * measured }
        let ys: [Double] = series.flatMap { run in run.points.flatMap { [$0.requestsPerSecond, drawCeiling ? $0.computeCeiling ?? 0 : 0] } }
        let xLog = !openLoop && (xs.max() ?? 1) / max(xs.min() ?? 1, 1) >= 4
        let xAxis = xLog ? Axis.log(values: xs, base: 2) : Axis.linear(from: 0, to: xs.max() ?? 1)
        let yAxis = Axis.linear(from: 0, to: ys.max() ?? 1)
        let frame = PlotFrame(originX: 0, width: Self.panelWidth, height: Self.height, margin: Self.margin, x: xAxis, y: yAxis)
        frame.drawAxes(
            &svg, xLabel: openLoop ? "offered rate (requests/s)" : "concurrency (clients, one connection each)",
            yLabel: "throughput (requests/s)", title: openLoop ? "Throughput against offered load" : "Throughput against concurrency")
        var legend: [(String, String, Bool)] = []
        for (index, run) in series.enumerated() {
            let color = Self.palette[index % Self.palette.count]
            frame.polyline(&svg, run.points.map { ($0.x, $0.requestsPerSecond) }, color: color, dashed: false, id: "throughput-\(index)")
            legend.append((run.label + " requests/s", color, false))
            let ceiling = run.points.compactMap { point in point.computeCeiling.map { (point.x, $0) } }
            if !ceiling.isEmpty && drawCeiling {
                frame.polyline(&svg, ceiling, color: color, dashed: true, id: "compute-\(index)")
                legend.append((run.label + " compute-only ceiling", color, true))
            } else if let top = ceiling.map(\.1).max() {
                legend.append((run.label + " compute-only ceiling: up to \(Axis.label(top)) req/s (off the chart)", color, true))
            }
        }
        frame.legend(&svg, legend)
    }

    private func drawLatency(_ svg: inout SVGWriter) {
        let xs = series.flatMap { $0.points.map(\.requestsPerSecond) }
        let ys: [Double] = series.flatMap { run in run.points.flatMap { [$0.p50, $0.p99].compactMap { $0 } } }.filter { $0 > 0 }
        let yLog = (ys.max() ?? 1) / max(ys.min() ?? 1, 1e-3) >= 20
        let yAxis = yLog ? Axis.log(values: ys, base: 10) : Axis.linear(from: 0, to: ys.max() ?? 1)
        let frame = PlotFrame(
            originX: Self.panelWidth, width: Self.panelWidth, height: Self.height, margin: Self.margin,
            x: Axis.linear(from: 0, to: xs.max() ?? 1), y: yAxis)
        frame.drawAxes(
            &svg, xLabel: "throughput (requests/s)", yLabel: "latency (ms" + (yLog ? ", log scale)" : ")"),
            title: "Latency against throughput")
        var legend: [(String, String, Bool)] = []
        for (index, run) in series.enumerated() {
            let color = Self.palette[index % Self.palette.count]
            frame.polyline(
                &svg, run.points.compactMap { p in p.p50.map { (p.requestsPerSecond, $0) } }, color: color, dashed: false,
                id: "p50-\(index)")
            frame.polyline(
                &svg, run.points.compactMap { p in p.p99.map { (p.requestsPerSecond, $0) } }, color: color, dashed: true, id: "p99-\(index)"
            )
            legend.append((run.label + " p50", color, false))
            legend.append((run.label + " p99", color, true))
        }
        frame.legend(&svg, legend)
    }
}
