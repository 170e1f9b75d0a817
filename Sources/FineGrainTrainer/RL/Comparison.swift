import FineGrain
import Foundation

/// `finegrain compare`: the same task trained with several methods over several seeds, one run folder each
/// (`DIR/<method>-seed<k>/`), sharing one warm start per seed, then `DIR/report.html`, `DIR/summary.json`
/// and `DIR/curves.svg`. Finished runs are not retrained (their summaries are reused); an interrupted run
/// resumes from its checkpoint.
public enum Comparison {
    public static func run(base: RLConfig, methods: [String], seeds: [UInt64], out: URL, target: AccuracyTarget,
                           log: (String) -> Void = { _ in },
                           progress: (String, Int, Int, [String: JSONValue]) -> Void = { _, _, _, _ in }) throws -> [String] {
        guard !methods.isEmpty else { throw FineGrainError.invalidParameter(name: "methods", method: "compare", reason: "no methods given") }
        guard !seeds.isEmpty else { throw FineGrainError.invalidParameter(name: "seeds", method: "compare", reason: "need at least one seed") }
        for m in methods { _ = try MethodRecipe.named(m) }
        var runs = [RunRecord]()
        var rows = [JSONValue]()
        for seed in seeds {
            for method in methods {
                var c = base
                c.method = method; c.seed = seed
                let label = "\(method) seed \(seed)"
                let s = try TrainingRun.run(config: c, out: out.appendingPathComponent("\(method)-seed\(seed)"),
                                            warmStartCache: out.appendingPathComponent("warmstart"), log: log) { step, total, line in
                    progress(label, step, total, line)
                }
                runs.append(s.record)
                rows.append(.object(s.json))
                log(String(format: "%@: accuracy %.3f -> %.3f in %.0f s", label,
                           s.json["initial_accuracy"]?.doubleValue ?? .nan, s.json["final_accuracy"]?.doubleValue ?? .nan,
                           s.json["seconds"]?.doubleValue ?? 0))
            }
        }
        let options = ReportOptions(
            subtitle: "task \(base.task), \(base.steps) RL steps x \(base.promptsPerStep) prompts x \(base.groupSize) samples, "
                + "d=\(base.dModel) L=\(base.nLayers) H=\(base.nHeads), seeds \(seeds.map(String.init).joined(separator: ","))",
            target: target, baseline: methods.contains("grpo") ? "grpo" : methods[0])
        let paths = try Report.write(runs, options: options, to: out.path)
        try JSONValue.object(["runs": .array(rows)]).serialized().write(to: out.appendingPathComponent("runs.json"))
        return paths
    }
}
