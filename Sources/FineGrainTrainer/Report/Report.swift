import FineGrain
import Foundation

/// The comparison report: `report.html` (self-contained: inline CSS and SVG, no scripts or external
/// assets), `summary.json`, and `curves.svg` (the accuracy charts alone, for a README).
///
/// Curves show, per method and per evaluated step, the mean over seeds as a line and the min-max over
/// seeds as a shaded band. Against tokens, the x of a point is the mean over seeds of the tokens seen at
/// that step.
public enum Report {
    /// The charts of the HTML report, in order (one `<svg>` each).
    public static let chartTitles = [
        "Accuracy vs step", "Accuracy vs tokens", "Mean reward vs step", "KL to reference vs step", "Entropy vs step",
    ]

    /// Escapes `&`, `<`, `>`, `"` and `'` for HTML and SVG text and attributes.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }

    /// Mean and min-max over seeds of `value` per step, per method; x is the step or the mean tokens seen.
    static func series(_ runs: [RunRecord], options: ReportOptions, byTokens: Bool, value: (StepMetrics) -> Double?) -> [ChartSeries] {
        methodOrder(runs).enumerated().map { i, name in
            var byStep: [Int: (tokens: [Double], ys: [Double])] = [:]
            for r in runs where r.method == name {
                for m in r.metrics {
                    guard let y = value(m) else { continue }
                    byStep[m.step, default: ([], [])].tokens.append(Double(m.tokensSeen))
                    byStep[m.step, default: ([], [])].ys.append(y)
                }
            }
            let points = byStep.keys.sorted().map { step -> (x: Double, y: Double, lo: Double, hi: Double) in
                let e = byStep[step]!
                let x = byTokens ? e.tokens.reduce(0, +) / Double(e.tokens.count) : Double(step)
                return (x, e.ys.reduce(0, +) / Double(e.ys.count), e.ys.min()!, e.ys.max()!)
            }
            let color = SVGChart.palette[i % SVGChart.palette.count]
            return ChartSeries(name: name, color: color, dashed: name == options.baseline, points: points)
        }
    }

    static func charts(_ runs: [RunRecord], _ options: ReportOptions, target: Double) -> [SVGChart] {
        let ref = (y: target, label: "target \(fmt(target))")
        let acc = { (m: StepMetrics) in m.accuracy }
        return [
            SVGChart(title: chartTitles[0], xLabel: "optimiser step", yLabel: "accuracy",
                     series: series(runs, options: options, byTokens: false, value: acc), yRange: 0 ... 1, reference: ref),
            SVGChart(title: chartTitles[1], xLabel: "response tokens sampled", yLabel: "accuracy",
                     series: series(runs, options: options, byTokens: true, value: acc), yRange: 0 ... 1, reference: ref),
            SVGChart(title: chartTitles[2], xLabel: "optimiser step", yLabel: "mean outcome reward",
                     series: series(runs, options: options, byTokens: false) { $0.rewardMean }, yRange: nil, reference: nil),
            SVGChart(title: chartTitles[3], xLabel: "optimiser step", yLabel: "KL",
                     series: series(runs, options: options, byTokens: false) { $0.kl }, yRange: nil, reference: nil),
            SVGChart(title: chartTitles[4], xLabel: "optimiser step", yLabel: "entropy (nats)",
                     series: series(runs, options: options, byTokens: false) { $0.entropy }, yRange: nil, reference: nil),
        ]
    }

    static func targetText(_ options: ReportOptions, _ target: Double) -> String {
        switch options.target {
        case let .absolute(v): return "accuracy \(fmt(v))"
        case let .aboveInitial(d): return "initial accuracy + \(fmt(d)) = \(fmt(target))"
        }
    }

    /// The summary table's cells per method: method, seeds, initial accuracy, final accuracy mean ± std,
    /// steps to target, tokens to target, wall seconds.
    static func tableRow(_ m: MethodSummary) -> [String] {
        let n = m.seeds.count
        let steps = m.meanStepsToTarget.map { "\(fmt0($0)) (\(m.reachedCount)/\(n))" } ?? "not reached"
        let tokens = m.meanTokensToTarget.map { "\(fmt0($0)) (\(m.reachedCount)/\(n))" } ?? "not reached"
        return [m.method, "\(n)", fmt(m.initialAccuracyMean), "\(fmt(m.finalAccuracyMean)) ± \(fmt(m.finalAccuracyStd))",
                steps, tokens, String(format: "%.1f", m.wallSecondsMean)]
    }

    /// The HTML report.
    public static func html(_ runs: [RunRecord], options: ReportOptions = ReportOptions()) throws -> String {
        let s = try summarize(runs, options: options)
        var h = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <title>\(escape(options.title))</title>
        <style>
        body{font-family:Helvetica,Arial,sans-serif;color:#222;max-width:1180px;margin:24px auto;padding:0 16px;line-height:1.45}
        h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}.sub{color:#555;margin:0 0 16px}
        table{border-collapse:collapse;font-size:14px}th,td{border-bottom:1px solid #ddd;padding:6px 12px;text-align:right}
        th:first-child,td:first-child{text-align:left}th{background:#f4f4f4}tbody tr:hover{background:#fafafa}
        .charts{display:flex;flex-wrap:wrap;gap:12px}.chart{border:1px solid #e3e3e3;max-width:100%;height:auto}
        .note{color:#666;font-size:13px}
        </style></head><body>
        <h1>\(escape(options.title))</h1>

        """
        if !options.subtitle.isEmpty { h += "<p class=\"sub\">\(escape(options.subtitle))</p>\n" }
        h += "<h2>What happened</h2>\n<p class=\"narrative\">\(escape(s.narrative))</p>\n"
        h += "<h2>Summary</h2>\n<p class=\"note\">Target: \(escape(targetText(options, s.target))). Steps and tokens to target: mean over the seeds that reached it (seeds reached / seeds). Final accuracy: last evaluation, mean ± sample std over seeds.</p>\n"
        h += "<table><thead><tr><th>Method</th><th>Seeds</th><th>Initial accuracy</th><th>Final accuracy</th><th>Steps to target</th><th>Tokens to target</th><th>Wall seconds</th></tr></thead>\n<tbody>\n"
        for m in s.methods {
            h += "<tr>" + tableRow(m).map { "<td>\(escape($0))</td>" }.joined() + "</tr>\n"
        }
        h += "</tbody></table>\n<h2>Learning curves</h2>\n<p class=\"note\">Lines: mean over seeds; shaded: min–max over seeds; dashed line: \(escape(options.baseline)) (baseline).</p>\n<div class=\"charts\">\n"
        for (i, c) in charts(runs, options, target: s.target).enumerated() { h += c.render(id: "c\(i)") }
        h += "</div>\n</body></html>\n"
        return h
    }

    /// The accuracy-vs-step and accuracy-vs-tokens charts side by side, as one standalone SVG document.
    public static func svg(_ runs: [RunRecord], options: ReportOptions = ReportOptions()) throws -> String {
        let s = try summarize(runs, options: options)
        let cs = Array(charts(runs, options, target: s.target).prefix(2))
        let w = cs.map(\.width).reduce(0, +), h = cs.map(\.height).max() ?? 0
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" viewBox=\"0 0 \(Int(w)) \(Int(h))\" font-family=\"Helvetica, Arial, sans-serif\">\n"
        out += "<title>\(escape(options.title))</title>\n"
        var x = 0.0
        for (i, c) in cs.enumerated() {
            out += "<g transform=\"translate(\(Int(x)) 0)\">\n" + c.render(standalone: true, id: "s\(i)") + "</g>\n"
            x += c.width
        }
        return out + "</svg>\n"
    }

    /// `summary.json`: target, per-method numbers (nulls where a seed never reached the target), the
    /// fastest method, verdicts against the baseline, and the narrative. Keys sorted, so it diffs well.
    public static func summaryJSON(_ runs: [RunRecord], options: ReportOptions = ReportOptions()) throws -> String {
        let s = try summarize(runs, options: options)
        func opt(_ v: Int?) -> Any { v.map { $0 as Any } ?? NSNull() }
        func optD(_ v: Double?) -> Any { v.map { $0 as Any } ?? NSNull() }
        let targetKind: [String: Any]
        switch options.target {
        case let .absolute(v): targetKind = ["kind": "absolute", "value": v]
        case let .aboveInitial(d): targetKind = ["kind": "above_initial", "value": d]
        }
        let methods: [[String: Any]] = s.methods.map { m in
            [
                "method": m.method, "seeds": m.seeds.map { NSNumber(value: $0) },
                "initial_accuracy_mean": m.initialAccuracyMean,
                "final_accuracy_mean": m.finalAccuracyMean, "final_accuracy_std": m.finalAccuracyStd,
                "steps_to_target": m.stepsToTarget.map(opt), "tokens_to_target": m.tokensToTarget.map(opt),
                "mean_steps_to_target": optD(m.meanStepsToTarget), "mean_tokens_to_target": optD(m.meanTokensToTarget),
                "reached_seeds": m.reachedCount, "wall_seconds_mean": m.wallSecondsMean,
            ]
        }
        let obj: [String: Any] = [
            "title": options.title, "baseline": options.baseline,
            "target": targetKind.merging(["resolved": s.target]) { a, _ in a },
            "methods": methods, "fastest": s.fastest.map { $0 as Any } ?? NSNull(),
            "verdicts": s.verdicts.map { ["method": $0.method, "vs_baseline": $0.verdict.rawValue] },
            "narrative": s.narrative,
        ]
        let data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// Writes `report.html`, `summary.json` and `curves.svg` into `directory` (created if missing);
    /// returns their paths.
    @discardableResult
    public static func write(_ runs: [RunRecord], options: ReportOptions = ReportOptions(), to directory: String) throws -> [String] {
        let files = [
            ("report.html", try html(runs, options: options)),
            ("summary.json", try summaryJSON(runs, options: options)),
            ("curves.svg", try svg(runs, options: options)),
        ]
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            return try files.map { name, text in
                let path = (directory as NSString).appendingPathComponent(name)
                try text.write(toFile: path, atomically: true, encoding: .utf8)
                return path
            }
        } catch {
            throw FineGrainError.invalidParameter(name: "directory", method: "report", reason: "cannot write to '\(directory)': \(error.localizedDescription)")
        }
    }
}
