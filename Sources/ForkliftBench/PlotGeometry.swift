import Foundation

/// Appends SVG elements; escapes text for XML.
struct SVGWriter {
    private var body = ""
    let width: Double
    let height: Double

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func number(_ value: Double) -> String { String(format: "%.1f", value) }

    mutating func raw(_ element: String) { body += element + "\n" }

    mutating func text(
        _ text: String, x: Double, y: Double, size: Double = 12, anchor: String = "start", weight: String = "normal",
        color: String = "#222", rotate: Bool = false
    ) {
        let transform = rotate ? " transform=\"rotate(-90 \(Self.number(x)) \(Self.number(y)))\"" : ""
        raw(
            "<text x=\"\(Self.number(x))\" y=\"\(Self.number(y))\" font-size=\"\(Self.number(size))\" text-anchor=\"\(anchor)\" "
                + "font-weight=\"\(weight)\" fill=\"\(color)\"\(transform)>\(Self.escape(text))</text>")
    }

    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, color: String, width: Double = 1, dashed: Bool = false) {
        raw(
            "<line x1=\"\(Self.number(x1))\" y1=\"\(Self.number(y1))\" x2=\"\(Self.number(x2))\" y2=\"\(Self.number(y2))\" "
                + "stroke=\"\(color)\" stroke-width=\"\(Self.number(width))\"\(dashed ? " stroke-dasharray=\"6 4\"" : "")/>")
    }

    func finish() -> String {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            + "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Self.number(width))\" height=\"\(Self.number(height))\" "
            + "viewBox=\"0 0 \(Self.number(width)) \(Self.number(height))\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
            + "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n" + body + "</svg>\n"
    }
}

/// A scale from data values to [0, 1], with tick positions and their labels.
struct Axis {
    let low: Double
    let high: Double
    let isLog: Bool
    let ticks: [Double]

    /// Linear from `from`, with "nice" ticks (1, 2 or 5 × 10^k) and the top rounded up to one.
    static func linear(from: Double, to: Double) -> Axis {
        let span = max(to - from, 1e-9)
        let raw = span / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        let top = ceil(to / step) * step
        let ticks = stride(from: from, through: top + step / 2, by: step).map { $0 }
        return Axis(low: from, high: max(top, from + step), isLog: false, ticks: ticks)
    }

    /// Logarithmic over the values; base 2 ticks at the powers of two (concurrency), base 10 at 1-2-5 steps.
    static func log(values: [Double], base: Double) -> Axis {
        let positive = values.filter { $0 > 0 }
        let low = positive.min() ?? 1
        let high = max(positive.max() ?? 1, low * 1.01)
        var ticks: [Double] = []
        if base == 2 {
            var tick = pow(2, floor(log2(low)))
            while tick <= high * 1.0001 {
                ticks.append(tick)
                tick *= 2
            }
            return Axis(low: ticks.first ?? low, high: max(ticks.last ?? high, high), isLog: true, ticks: ticks)
        }
        var decade = pow(10, floor(log10(low)))
        let top = pow(10, ceil(log10(high)))
        let steps: [Double] = top / decade > 1000 ? [1] : [1, 2, 5]
        while decade <= top {
            ticks += steps.map { $0 * decade }.filter { $0 >= decade && $0 <= top }
            decade *= 10
        }
        let lowTick = ticks.last { $0 <= low } ?? low
        let highTick = ticks.first { $0 >= high } ?? high
        return Axis(low: lowTick, high: highTick, isLog: true, ticks: ticks.filter { $0 >= lowTick && $0 <= highTick })
    }

    func fraction(_ value: Double) -> Double {
        if isLog { return (log10(max(value, 1e-12)) - log10(low)) / max(log10(high) - log10(low), 1e-12) }
        return (value - low) / max(high - low, 1e-12)
    }

    static func label(_ value: Double) -> String {
        if value >= 10_000 { return String(format: "%.0fk", value / 1000) }
        if value == value.rounded() { return String(Int(value)) }
        if value >= 1 { return String(format: "%.1f", value) }
        return String(format: "%g", value)
    }
}

/// One panel: its axes, grid, lines and legend.
struct PlotFrame {
    let originX: Double
    let width: Double
    let height: Double
    let margin: (left: Double, right: Double, top: Double, bottom: Double)
    let x: Axis
    let y: Axis

    var left: Double { originX + margin.left }
    var right: Double { originX + width - margin.right }
    var top: Double { margin.top }
    var bottom: Double { height - margin.bottom }

    func point(_ vx: Double, _ vy: Double) -> (Double, Double) {
        (left + x.fraction(vx) * (right - left), bottom - y.fraction(vy) * (bottom - top))
    }

    func drawAxes(_ svg: inout SVGWriter, xLabel: String, yLabel: String, title: String) {
        svg.text(title, x: (left + right) / 2, y: top - 14, size: 14, anchor: "middle", weight: "bold")
        for tick in y.ticks {
            let (_, py) = point(x.low, tick)
            svg.line(left, py, right, py, color: "#e3e3e3")
            svg.text(Axis.label(tick), x: left - 6, y: py + 4, size: 11, anchor: "end", color: "#444")
        }
        for tick in x.ticks {
            let (px, _) = point(tick, y.low)
            svg.line(px, top, px, bottom, color: "#f0f0f0")
            svg.text(Axis.label(tick), x: px, y: bottom + 16, size: 11, anchor: "middle", color: "#444")
        }
        svg.line(left, bottom, right, bottom, color: "#333")
        svg.line(left, top, left, bottom, color: "#333")
        svg.text(xLabel, x: (left + right) / 2, y: bottom + 40, size: 12, anchor: "middle")
        svg.text(yLabel, x: originX + 18, y: (top + bottom) / 2, size: 12, anchor: "middle", rotate: true)
    }

    func polyline(_ svg: inout SVGWriter, _ values: [(Double, Double)], color: String, dashed: Bool, id: String) {
        guard !values.isEmpty else { return }
        let points = values.map { point($0.0, $0.1) }
        let list = points.map { "\(SVGWriter.number($0.0)),\(SVGWriter.number($0.1))" }.joined(separator: " ")
        svg.raw(
            "<polyline id=\"\(id)\" class=\"series\" points=\"\(list)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\""
                + "\(dashed ? " stroke-dasharray=\"6 4\"" : "")/>")
        for (px, py) in points {
            svg.raw(
                "<circle cx=\"\(SVGWriter.number(px))\" cy=\"\(SVGWriter.number(py))\" r=\"3\" fill=\"\(dashed ? "white" : color)\" stroke=\"\(color)\"/>"
            )
        }
    }

    /// A boxed legend in the panel's top-left corner: a line sample and a label per entry.
    func legend(_ svg: inout SVGWriter, _ entries: [(label: String, color: String, dashed: Bool)]) {
        guard !entries.isEmpty else { return }
        let longest = entries.map(\.label.count).max() ?? 0
        let boxWidth = min(Double(longest) * 6.6 + 44, right - left - 8)
        svg.raw(
            "<g class=\"legend\"><rect x=\"\(SVGWriter.number(left + 8))\" y=\"\(SVGWriter.number(top + 6))\" width=\"\(SVGWriter.number(boxWidth))\" "
                + "height=\"\(SVGWriter.number(Double(entries.count) * 17 + 8))\" fill=\"white\" fill-opacity=\"0.9\" stroke=\"#bbb\"/>")
        for (index, entry) in entries.enumerated() {
            let y = top + 22 + Double(index) * 17
            svg.line(left + 14, y - 4, left + 40, y - 4, color: entry.color, width: 2, dashed: entry.dashed)
            svg.text(entry.label, x: left + 46, y: y, size: 11)
        }
        svg.raw("</g>")
    }
}
