import Foundation
import FineGrain

/// One method's numbers, over its seeds.
public struct MethodSummary: Sendable, Equatable {
    public var method: String
    public var seeds: [UInt64]
    public var initialAccuracyMean: Double
    public var finalAccuracyMean: Double
    /// Sample standard deviation over seeds (0 with one seed).
    public var finalAccuracyStd: Double
    /// Per seed, the first step whose evaluated accuracy reaches the target (nil: never reached).
    public var stepsToTarget: [Int?]
    /// Per seed, the tokens seen at that step.
    public var tokensToTarget: [Int?]
    public var wallSecondsMean: Double

    /// Seeds that reached the target.
    public var reachedCount: Int { stepsToTarget.compactMap { $0 }.count }
    /// Mean steps to target over the seeds that reached it; nil when none did.
    public var meanStepsToTarget: Double? { Report.mean(stepsToTarget.compactMap { $0 }.map(Double.init)) }
    /// Mean tokens to target over the seeds that reached it; nil when none did.
    public var meanTokensToTarget: Double? { Report.mean(tokensToTarget.compactMap { $0 }.map(Double.init)) }
}

/// How a method compares with the baseline's final accuracy.
public enum Verdict: String, Sendable, Equatable {
    case better, worse
    /// The difference is within two standard errors of it (or there is one seed each and it is < 0.01).
    case withinNoise = "within_noise"
}

/// The numbers behind the report.
public struct ReportSummary: Sendable, Equatable {
    /// The accuracy the target columns use.
    public var target: Double
    /// Methods in order of first appearance in the runs.
    public var methods: [MethodSummary]
    /// The method that reached the target in the most seeds, fewest mean steps breaking ties; nil if none did.
    public var fastest: String?
    /// Final-accuracy verdict of each non-baseline method against the baseline (empty without baseline runs).
    public var verdicts: [(method: String, verdict: Verdict)]
    /// The "what happened" paragraph.
    public var narrative: String

    public static func == (l: ReportSummary, r: ReportSummary) -> Bool {
        l.target == r.target && l.methods == r.methods && l.fastest == r.fastest && l.narrative == r.narrative
            && l.verdicts.map(\.method) == r.verdicts.map(\.method) && l.verdicts.map(\.verdict) == r.verdicts.map(\.verdict)
    }
}

extension Report {
    static func mean(_ xs: [Double]) -> Double? { xs.isEmpty ? nil : xs.reduce(0, +) / Double(xs.count) }
    static func std(_ xs: [Double]) -> Double {
        guard xs.count > 1, let m = mean(xs) else { return 0 }
        return (xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(xs.count - 1)).squareRoot()
    }

    /// The first step whose evaluated accuracy is at least `target`; nil when none is.
    public static func firstReach(_ metrics: [StepMetrics], target: Double) -> StepMetrics? {
        metrics.first { ($0.accuracy ?? -.infinity) >= target }
    }

    /// The accuracy `options.target` stands for on these runs.
    public static func resolveTarget(_ runs: [RunRecord], _ target: AccuracyTarget) -> Double {
        switch target {
        case let .absolute(v): return v
        case let .aboveInitial(d): return (mean(runs.compactMap(\.initialAccuracy)) ?? 0) + d
        }
    }

    /// Method names in order of first appearance.
    static func methodOrder(_ runs: [RunRecord]) -> [String] {
        var seen = Set<String>(), out: [String] = []
        for r in runs where seen.insert(r.method).inserted { out.append(r.method) }
        return out
    }

    /// Per-method numbers, the fastest method, verdicts against the baseline, and the narrative.
    public static func summarize(_ runs: [RunRecord], options: ReportOptions = ReportOptions()) throws -> ReportSummary {
        try validate(runs, options)
        let target = resolveTarget(runs, options.target)
        let methods = methodOrder(runs).map { name -> MethodSummary in
            let rs = runs.filter { $0.method == name }
            let finals = rs.compactMap(\.finalAccuracy)
            let reach = rs.map { firstReach($0.metrics, target: target) }
            return MethodSummary(
                method: name, seeds: rs.map(\.seed),
                initialAccuracyMean: mean(rs.compactMap(\.initialAccuracy)) ?? 0,
                finalAccuracyMean: mean(finals) ?? 0, finalAccuracyStd: std(finals),
                stepsToTarget: reach.map { $0?.step }, tokensToTarget: reach.map { $0?.tokensSeen },
                wallSecondsMean: mean(rs.map(\.wallSeconds)) ?? 0)
        }
        let fastest = methods.filter { $0.reachedCount > 0 }.min { a, b in
            a.reachedCount != b.reachedCount ? a.reachedCount > b.reachedCount : (a.meanStepsToTarget ?? 0) < (b.meanStepsToTarget ?? 0)
        }?.method
        var verdicts: [(method: String, verdict: Verdict)] = []
        if let base = methods.first(where: { $0.method == options.baseline }) {
            for m in methods where m.method != base.method {
                let d = m.finalAccuracyMean - base.finalAccuracyMean
                let se = (m.finalAccuracyStd * m.finalAccuracyStd / Double(m.seeds.count)
                    + base.finalAccuracyStd * base.finalAccuracyStd / Double(base.seeds.count)).squareRoot()
                let noise = max(2 * se, 0.01)
                verdicts.append((m.method, abs(d) <= noise ? .withinNoise : (d > 0 ? .better : .worse)))
            }
        }
        var summary = ReportSummary(target: target, methods: methods, fastest: fastest, verdicts: verdicts, narrative: "")
        summary.narrative = narrative(summary, runs: runs, options: options)
        return summary
    }

    static func narrative(_ s: ReportSummary, runs: [RunRecord], options: ReportOptions) -> String {
        var out: [String] = []
        let maxStep = runs.compactMap { $0.metrics.last?.step }.max() ?? 0
        let seedCounts = Set(s.methods.map { $0.seeds.count })
        out.append("\(s.methods.count) method\(s.methods.count == 1 ? "" : "s"), \(seedCounts.sorted().map(String.init).joined(separator: "/")) seed\(seedCounts == [1] ? "" : "s") each, up to \(maxStep) steps; target accuracy \(fmt(s.target)).")
        if let f = s.fastest, let m = s.methods.first(where: { $0.method == f }) {
            out.append("\(f) reached the target first (\(m.reachedCount)/\(m.seeds.count) seeds, mean \(fmt0(m.meanStepsToTarget ?? 0)) steps, \(fmt0(m.meanTokensToTarget ?? 0)) tokens).")
            let never = s.methods.filter { $0.reachedCount == 0 }.map(\.method)
            if !never.isEmpty { out.append("Never reached it: \(never.joined(separator: ", ")).") }
        } else {
            out.append("No method reached the target within \(maxStep) steps.")
        }
        if let best = s.methods.max(by: { $0.finalAccuracyMean < $1.finalAccuracyMean }) {
            out.append("Highest final accuracy: \(best.method) (\(fmt(best.finalAccuracyMean)) ± \(fmt(best.finalAccuracyStd))).")
        }
        if let base = s.methods.first(where: { $0.method == options.baseline }) {
            let group = { (v: Verdict) in s.verdicts.filter { $0.verdict == v }.map(\.method) }
            let better = group(.better), worse = group(.worse), tie = group(.withinNoise)
            let b = "\(base.method) (\(fmt(base.finalAccuracyMean)) ± \(fmt(base.finalAccuracyStd)))"
            if s.verdicts.isEmpty {
                out.append("Only \(base.method) ran, so there is nothing to compare it with.")
            } else if better.isEmpty {
                out.append("No method beat \(b) on final accuracy beyond seed noise.")
            } else {
                out.append("Beat \(b) on final accuracy beyond seed noise: \(better.joined(separator: ", ")).")
            }
            if !worse.isEmpty { out.append("Worse than \(base.method): \(worse.joined(separator: ", ")).") }
            if !tie.isEmpty, !s.verdicts.isEmpty { out.append("Within seed noise of \(base.method): \(tie.joined(separator: ", ")).") }
            let others = s.methods.filter { $0.method != base.method }
            if let bs = base.meanStepsToTarget {
                let faster = others.filter { $0.reachedCount >= base.reachedCount && ($0.meanStepsToTarget ?? .infinity) < bs }.map(\.method)
                out.append(faster.isEmpty
                    ? "None reached the target in fewer steps than \(base.method) (\(fmt0(bs)) steps)."
                    : "Reached the target in fewer steps than \(base.method) (\(fmt0(bs)) steps, in at least as many seeds): \(faster.joined(separator: ", ")).")
            } else if !others.isEmpty {
                let reached = others.filter { $0.reachedCount > 0 }.map(\.method)
                out.append("\(base.method) never reached the target" + (reached.isEmpty ? "." : "; \(reached.joined(separator: ", ")) did."))
            }
            if seedCounts.contains(1) { out.append("With a single seed, these differences are anecdotal.") }
        } else {
            out.append("There are no \(options.baseline) runs, so no method is compared with it.")
        }
        return out.joined(separator: " ")
    }

    static func fmt(_ x: Double) -> String { String(format: "%.3f", x) }
    static func fmt0(_ x: Double) -> String { String(format: "%.0f", x) }
}
