import FineGrain
@testable import FineGrainTrainer
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest

/// Synthetic learning curves: accuracy rises from `start` toward `end` with rate `rate`, evaluated every
/// `every` steps, with a seed-dependent wobble.
func syntheticRun(_ method: String, seed: UInt64, start: Double, end: Double, rate: Double, steps: Int = 200, every: Int = 10,
                  tokensPerStep: Int = 640, wall: Double = 12.5) -> RunRecord {
    var rng = SplitMix64(seed: seed &* 7919 &+ UInt64(method.count))
    var metrics: [StepMetrics] = [], tokens = 0
    for step in 0 ... steps {
        tokens += tokensPerStep + Int(rng.next() % 64)
        let base = end - (end - start) * exp(-rate * Double(step))
        let acc = step % every == 0 ? min(1, max(0, base + 0.03 * rng.normal())) : nil
        metrics.append(StepMetrics(step: step, tokensSeen: tokens, accuracy: acc, rewardMean: base + 0.05 * rng.normal(),
                                   kl: 0.0005 * Double(step) * (1 + 0.1 * rng.normal()), entropy: 1.2 * exp(-0.004 * Double(step)) + 0.02 * rng.normal()))
    }
    return RunRecord(method: method, seed: seed, metrics: metrics, wallSeconds: wall + Double(seed))
}

func curve(_ method: String, seed: UInt64 = 0, _ accs: [(Int, Double?)], wall: Double = 1) -> RunRecord {
    RunRecord(method: method, seed: seed, metrics: accs.map { StepMetrics(step: $0.0, tokensSeen: 100 * $0.0, accuracy: $0.1, rewardMean: 0, kl: 0, entropy: 1) },
              wallSeconds: wall)
}

final class ReportTests: XCTestCase {
    func sampleRuns() -> [RunRecord] {
        var runs: [RunRecord] = []
        for seed: UInt64 in 1 ... 3 {
            runs.append(syntheticRun("grpo", seed: seed, start: 0.25, end: 0.55, rate: 0.012))
            runs.append(syntheticRun("pure", seed: seed, start: 0.25, end: 0.62, rate: 0.02))
            runs.append(syntheticRun("prime", seed: seed, start: 0.25, end: 0.5, rate: 0.01))
            runs.append(syntheticRun("spo <tree> & \"friends\"", seed: seed, start: 0.25, end: 0.4, rate: 0.01))
        }
        return runs
    }

    func testStepsToTargetOnHandMadeCurves() throws {
        let c = curve("a", [(0, 0.1), (5, nil), (10, 0.29), (20, 0.3), (30, 0.2), (40, 0.5)])
        XCTAssertEqual(Report.firstReach(c.metrics, target: 0.3)?.step, 20)
        XCTAssertEqual(Report.firstReach(c.metrics, target: 0.3)?.tokensSeen, 2000)
        XCTAssertEqual(Report.firstReach(c.metrics, target: 0.1)?.step, 0)
        XCTAssertNil(Report.firstReach(c.metrics, target: 0.51))
        let runs = [c, curve("a", seed: 1, [(0, 0.1), (10, 0.2), (20, 0.45)]), curve("b", [(0, 0.1), (10, 0.15), (40, 0.2)])]
        let s = try Report.summarize(runs, options: ReportOptions(target: .aboveInitial(0.3)))
        XCTAssertEqual(s.target, 0.4, accuracy: 1e-12)
        XCTAssertEqual(s.methods.map(\.method), ["a", "b"])
        XCTAssertEqual(s.methods[0].stepsToTarget, [40, 20])
        XCTAssertEqual(s.methods[0].tokensToTarget, [4000, 2000])
        XCTAssertEqual(s.methods[0].meanStepsToTarget, 30)
        XCTAssertEqual(s.methods[1].stepsToTarget, [nil])
        XCTAssertNil(s.methods[1].meanStepsToTarget)
        XCTAssertEqual(s.methods[0].finalAccuracyMean, 0.475, accuracy: 1e-12)
        XCTAssertEqual(s.methods[0].finalAccuracyStd, (2 * 0.025 * 0.025).squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(s.fastest, "a")
        XCTAssertTrue(s.narrative.contains("There are no grpo runs"), s.narrative)
        let html = try Report.html(runs, options: ReportOptions(target: .aboveInitial(0.3)))
        XCTAssertTrue(html.contains("<td>not reached</td>"))
        XCTAssertTrue(html.contains("<td>30 (2/2)</td>"))
        let none = try Report.summarize(runs, options: ReportOptions(target: .absolute(0.9)))
        XCTAssertNil(none.fastest)
        XCTAssertTrue(none.narrative.contains("No method reached the target within 40 steps."), none.narrative)
    }

    func testHTMLHasOneSVGPerChartAndOneRowPerMethodWithMatchingNumbers() throws {
        let runs = sampleRuns()
        let html = try Report.html(runs, options: ReportOptions(subtitle: "addition, 3-4 digits"))
        XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, Report.chartTitles.count)
        XCTAssertEqual(html.components(separatedBy: "</svg>").count - 1, Report.chartTitles.count)
        XCTAssertEqual(html.components(separatedBy: "<tr><td>").count - 1, 4)
        let s = try Report.summarize(runs)
        for m in s.methods {
            let finals = runs.filter { $0.method == m.method }.map { $0.finalAccuracy! }
            let mean = finals.reduce(0, +) / 3
            XCTAssertEqual(m.finalAccuracyMean, mean, accuracy: 1e-12)
            let row = "<tr>" + Report.tableRow(m).map { "<td>\(Report.escape($0))</td>" }.joined() + "</tr>"
            XCTAssertTrue(html.contains(row), row)
            XCTAssertTrue(html.contains("<td>\(String(format: "%.3f", mean)) ± "), m.method)
            let wall = runs.filter { $0.method == m.method }.map(\.wallSeconds).reduce(0, +) / 3
            XCTAssertTrue(row.contains("<td>\(String(format: "%.1f", wall))</td>"))
        }
        XCTAssertFalse(html.contains("<script"))
        XCTAssertFalse(html.contains("http://") && !html.contains("xmlns"))
        XCTAssertEqual(s.fastest, "pure")
        XCTAssertEqual(s.verdicts.first { $0.method == "pure" }?.verdict, .better)
        XCTAssertEqual(s.verdicts.first { $0.method.hasPrefix("spo") }?.verdict, .worse)
        XCTAssertTrue(s.narrative.contains("pure reached the target first"), s.narrative)
        XCTAssertTrue(s.narrative.contains("Reached the target in fewer steps than grpo (100 steps, in at least as many seeds): pure."), s.narrative)
    }

    func testEscaping() throws {
        XCTAssertEqual(Report.escape("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;")
        let runs = sampleRuns()
        let html = try Report.html(runs, options: ReportOptions(title: "A <b>bold</b> title", subtitle: "x & y"))
        XCTAssertFalse(html.contains("<b>bold</b>"))
        XCTAssertFalse(html.contains("spo <tree>"))
        XCTAssertTrue(html.contains("spo &lt;tree&gt; &amp; &quot;friends&quot;"))
        XCTAssertTrue(html.contains("x &amp; y"))
        XCTAssertFalse(try Report.svg(runs).contains("<tree>"))
    }

    /// Tags balance: every opened element is closed in order (self-closing ones aside).
    func checkBalanced(_ text: String, file: StaticString = #filePath, line: UInt = #line) {
        var stack: [String] = []
        var i = text.startIndex
        while let lt = text[i...].firstIndex(of: "<") {
            guard let gt = text[lt...].firstIndex(of: ">") else { XCTFail("unclosed <", file: file, line: line); return }
            let tag = text[text.index(after: lt) ..< gt]
            i = text.index(after: gt)
            if tag.hasPrefix("!") || tag.hasPrefix("?") || tag.hasSuffix("/") { continue }
            let name = String(tag.split(separator: " ").first ?? "")
            if ["meta", "br"].contains(name.lowercased()) { continue }
            if name.hasPrefix("/") {
                guard stack.popLast() == String(name.dropFirst()) else { XCTFail("mismatched \(name)", file: file, line: line); return }
            } else {
                stack.append(name)
            }
        }
        XCTAssertEqual(stack, [], file: file, line: line)
    }

    func testOutputIsWellFormed() throws {
        let runs = sampleRuns()
        checkBalanced(try Report.html(runs))
        let svg = try Report.svg(runs)
        checkBalanced(svg)
        XCTAssertTrue(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        XCTAssertEqual(svg.components(separatedBy: "<svg").count - 1, 3)
        // The standalone SVG parses as XML.
        let parser = XMLParser(data: Data(svg.utf8))
        XCTAssertTrue(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        let json = try Report.summaryJSON(runs)
        let obj = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        XCTAssertEqual((obj?["methods"] as? [[String: Any]])?.count, 4)
        XCTAssertEqual(obj?["fastest"] as? String, "pure")
    }

    func testSummaryJSONNullsWhenNeverReached() throws {
        let runs = [curve("grpo", [(0, 0.1), (10, 0.5)]), curve("pure", [(0, 0.1), (10, 0.2)])]
        let json = try Report.summaryJSON(runs, options: ReportOptions(target: .absolute(0.4)))
        let obj = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        let methods = obj["methods"] as! [[String: Any]]
        XCTAssertEqual(methods[0]["steps_to_target"] as? [Int], [10])
        XCTAssertTrue((methods[1]["steps_to_target"] as? [Any])?.first is NSNull)
        XCTAssertTrue(methods[1]["mean_steps_to_target"] is NSNull)
        XCTAssertEqual((obj["verdicts"] as? [[String: String]])?.first?["vs_baseline"], "worse")
        let narrative = obj["narrative"] as! String
        XCTAssertTrue(narrative.contains("No method beat grpo"), narrative)
        XCTAssertTrue(narrative.contains("Worse than grpo: pure"), narrative)
        XCTAssertTrue(narrative.contains("anecdotal"), narrative)
        XCTAssertTrue(narrative.contains("None reached the target in fewer steps than grpo (10 steps)."), narrative)
        let late = try Report.summarize([curve("grpo", [(0, 0.1), (10, 0.2)]), curve("pure", [(0, 0.1), (10, 0.5)])], options: ReportOptions(target: .absolute(0.4)))
        XCTAssertTrue(late.narrative.contains("grpo never reached the target; pure did."), late.narrative)
        XCTAssertTrue(late.narrative.contains("Beat grpo (0.200 ± 0.000) on final accuracy beyond seed noise: pure."), late.narrative)
    }

    func testBadInputThrowsNamingTheField() {
        XCTAssertThrowsError(try Report.html([])) { XCTAssertEqual($0 as? FineGrainError, .invalidField(field: "runs", reason: "no runs to report")) }
        XCTAssertThrowsError(try Report.html([curve("a", [(0, 0.1), (0, 0.2)])])) { XCTAssertTrue("\($0)".contains("runs[0].metrics[1].step")) }
        XCTAssertThrowsError(try Report.html([curve("a", [(0, 1.5)])])) { XCTAssertTrue("\($0)".contains("runs[0].metrics[0].accuracy")) }
        XCTAssertThrowsError(try Report.html([curve("a", [(0, nil)])])) { XCTAssertTrue("\($0)".contains("no step has an evaluated accuracy")) }
        XCTAssertThrowsError(try Report.html([curve("", [(0, 0.1)])]))
        XCTAssertThrowsError(try Report.html([curve("a", [(0, 0.1)], wall: .nan)]))
        XCTAssertThrowsError(try Report.html([curve("a", [(0, 0.1)])], options: ReportOptions(target: .absolute(.infinity))))
    }

    func testTicks() {
        XCTAssertEqual(SVGChart.ticks(0, 1), [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1])
        XCTAssertEqual(SVGChart.ticks(0, 200), [0, 50, 100, 150, 200])
        XCTAssertEqual(SVGChart.label(128_000), "128k")
        XCTAssertEqual(SVGChart.label(2_500_000), "2.5M")
        XCTAssertEqual(SVGChart.label(0.25), "0.25")
    }

    /// Writes a sample report (for looking at) to $TMPDIR/finegrain-report-sample.
    func testWriteSampleReport() throws {
        let dir = (NSTemporaryDirectory() as NSString).appendingPathComponent("finegrain-report-sample")
        let paths = try Report.write(sampleRuns(), options: ReportOptions(subtitle: "synthetic curves: addition, 3 seeds"), to: dir)
        XCTAssertEqual(paths.map { ($0 as NSString).lastPathComponent }, ["report.html", "summary.json", "curves.svg"])
        for p in paths { XCTAssertTrue(FileManager.default.fileExists(atPath: p)) }
        XCTAssertThrowsError(try Report.write(sampleRuns(), to: "/proc/definitely/not/here"))
    }
}
