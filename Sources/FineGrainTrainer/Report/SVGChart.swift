import Foundation

/// One line of a chart: the mean over seeds at each x, with a shaded band from `lo` to `hi`.
struct ChartSeries {
    var name: String
    var color: String
    var dashed: Bool
    /// (x, mean, lo, hi), sorted by x.
    var points: [(x: Double, y: Double, lo: Double, hi: Double)]
}

/// A line chart with bands, axes, ticks, labels, a legend and an optional horizontal reference line, as
/// an SVG element of `width` x `height` user units.
struct SVGChart {
    var title: String
    var xLabel: String
    var yLabel: String
    var series: [ChartSeries]
    var yRange: ClosedRange<Double>?
    var reference: (y: Double, label: String)?
    var width = 560.0, height = 340.0

    static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8C564B", "#7F7F7F"]

    /// "Nice" tick values (steps of 1, 2 or 5 times a power of ten) covering `lo...hi`, about `count` of them.
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        guard hi > lo, lo.isFinite, hi.isFinite else { return [lo] }
        let raw = (hi - lo) / Double(max(1, count))
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var out: [Double] = [], v = ceil(lo / step - 1e-9) * step
        while v <= hi + step * 1e-9 { out.append(abs(v) < step * 1e-9 ? 0 : v); v += step }
        return out
    }

    /// Short tick label: 1.2k, 3M, 0.25.
    static func label(_ v: Double) -> String {
        let a = abs(v)
        func trim(_ s: String) -> String {
            guard s.contains(".") else { return s }
            var s = s
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
            return s
        }
        if a >= 1e6 { return trim(String(format: "%.2f", v / 1e6)) + "M" }
        if a >= 1e4 { return trim(String(format: "%.1f", v / 1e3)) + "k" }
        if a >= 100 || a == 0 { return String(format: "%.0f", v) }
        return trim(String(format: "%.3f", v))
    }

    /// Legend names longer than 20 characters are cut to 19 and an ellipsis (the table has them in full).
    static func short(_ name: String) -> String { name.count > 20 ? String(name.prefix(19)) + "…" : name }

    func render(standalone: Bool = false, id: String) -> String {
        let left = 62.0, right = 150.0, top = 34.0, bottom = 48.0
        let pw = width - left - right, ph = height - top - bottom
        let all = series.flatMap(\.points)
        // Steps and tokens count from 0: the x axis starts there unless some x is negative.
        var xlo = min(0, all.map(\.x).min() ?? 0), xhi = all.map(\.x).max() ?? 1
        if xhi <= xlo { xhi = xlo + 1 }
        var ylo = yRange?.lowerBound ?? (all.map(\.lo).min() ?? 0), yhi = yRange?.upperBound ?? (all.map(\.hi).max() ?? 1)
        if let r = reference, yRange == nil { ylo = min(ylo, r.y); yhi = max(yhi, r.y) }
        if yhi <= ylo { yhi = ylo + 1; ylo -= 0 }
        if yRange == nil { let pad = (yhi - ylo) * 0.05; ylo -= pad; yhi += pad }
        let xt = Self.ticks(xlo, xhi), yt = Self.ticks(ylo, yhi)
        if let f = xt.first, f < xlo { xlo = f }
        if let l = xt.last, l > xhi { xhi = l }
        func px(_ x: Double) -> Double { left + (x - xlo) / (xhi - xlo) * pw }
        func py(_ y: Double) -> Double { top + ph - (min(max(y, ylo), yhi) - ylo) / (yhi - ylo) * ph }
        func n(_ v: Double) -> String { String(format: "%.1f", v) }

        var s = standalone
            ? "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(n(width))\" height=\"\(n(height))\" viewBox=\"0 0 \(n(width)) \(n(height))\" font-family=\"Helvetica, Arial, sans-serif\" role=\"img\" aria-labelledby=\"\(id)-t\">\n"
            : "<svg class=\"chart\" viewBox=\"0 0 \(n(width)) \(n(height))\" width=\"\(n(width))\" height=\"\(n(height))\" role=\"img\" aria-labelledby=\"\(id)-t\">\n"
        s += "<title id=\"\(id)-t\">\(Report.escape(title))</title>\n"
        s += "<rect x=\"0\" y=\"0\" width=\"\(n(width))\" height=\"\(n(height))\" fill=\"#ffffff\"/>\n"
        s += "<text x=\"\(n(left))\" y=\"20\" font-size=\"14\" font-weight=\"bold\" fill=\"#222\">\(Report.escape(title))</text>\n"
        // Grid and ticks.
        for t in yt where t >= ylo - 1e-12 && t <= yhi + 1e-12 {
            s += "<line x1=\"\(n(left))\" y1=\"\(n(py(t)))\" x2=\"\(n(left + pw))\" y2=\"\(n(py(t)))\" stroke=\"#e5e5e5\"/>"
            s += "<text x=\"\(n(left - 6))\" y=\"\(n(py(t) + 4))\" font-size=\"11\" text-anchor=\"end\" fill=\"#444\">\(Self.label(t))</text>\n"
        }
        for t in xt {
            s += "<line x1=\"\(n(px(t)))\" y1=\"\(n(top + ph))\" x2=\"\(n(px(t)))\" y2=\"\(n(top + ph + 5))\" stroke=\"#444\"/>"
            s += "<text x=\"\(n(px(t)))\" y=\"\(n(top + ph + 18))\" font-size=\"11\" text-anchor=\"middle\" fill=\"#444\">\(Self.label(t))</text>\n"
        }
        s += "<rect x=\"\(n(left))\" y=\"\(n(top))\" width=\"\(n(pw))\" height=\"\(n(ph))\" fill=\"none\" stroke=\"#444\"/>\n"
        s += "<text x=\"\(n(left + pw / 2))\" y=\"\(n(height - 8))\" font-size=\"12\" text-anchor=\"middle\" fill=\"#222\">\(Report.escape(xLabel))</text>\n"
        s += "<text transform=\"translate(16 \(n(top + ph / 2))) rotate(-90)\" font-size=\"12\" text-anchor=\"middle\" fill=\"#222\">\(Report.escape(yLabel))</text>\n"
        // Bands, then lines, clipped to the plot area.
        s += "<clipPath id=\"\(id)-clip\"><rect x=\"\(n(left))\" y=\"\(n(top))\" width=\"\(n(pw))\" height=\"\(n(ph))\"/></clipPath>\n"
        s += "<g clip-path=\"url(#\(id)-clip)\">\n"
        for sr in series where sr.points.count > 1 {
            let upper = sr.points.map { "\(n(px($0.x))),\(n(py($0.hi)))" }
            let lower = sr.points.reversed().map { "\(n(px($0.x))),\(n(py($0.lo)))" }
            s += "<polygon points=\"\((upper + lower).joined(separator: " "))\" fill=\"\(sr.color)\" fill-opacity=\"0.15\" stroke=\"none\"/>\n"
        }
        if let r = reference {
            s += "<line x1=\"\(n(left))\" y1=\"\(n(py(r.y)))\" x2=\"\(n(left + pw))\" y2=\"\(n(py(r.y)))\" stroke=\"#888\" stroke-dasharray=\"2 3\"/>"
            s += "<text x=\"\(n(left + 4))\" y=\"\(n(py(r.y) - 4))\" font-size=\"10\" fill=\"#666\">\(Report.escape(r.label))</text>\n"
        }
        for sr in series {
            let pts = sr.points.map { "\(n(px($0.x))),\(n(py($0.y)))" }.joined(separator: " ")
            let dash = sr.dashed ? " stroke-dasharray=\"6 3\"" : ""
            if sr.points.count == 1, let p = sr.points.first {
                s += "<circle cx=\"\(n(px(p.x)))\" cy=\"\(n(py(p.y)))\" r=\"3\" fill=\"\(sr.color)\"/>\n"
            } else {
                s += "<polyline points=\"\(pts)\" fill=\"none\" stroke=\"\(sr.color)\" stroke-width=\"2\"\(dash)/>\n"
            }
        }
        s += "</g>\n"
        // Legend, right of the plot.
        for (i, sr) in series.enumerated() {
            let y = top + 10 + Double(i) * 18, x = left + pw + 14
            let dash = sr.dashed ? " stroke-dasharray=\"6 3\"" : ""
            s += "<line x1=\"\(n(x))\" y1=\"\(n(y))\" x2=\"\(n(x + 22))\" y2=\"\(n(y))\" stroke=\"\(sr.color)\" stroke-width=\"2\"\(dash)/>"
            s += "<text x=\"\(n(x + 28))\" y=\"\(n(y + 4))\" font-size=\"11\" fill=\"#222\">\(Report.escape(Self.short(sr.name)))</text>\n"
        }
        s += "</svg>\n"
        return s
    }
}
