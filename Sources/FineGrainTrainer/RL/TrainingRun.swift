import FineGrain
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What `finegrain train` writes to its output folder:
///
/// * `metrics.jsonl` — one object per step (`step`, `reward_mean`, `accuracy` where evaluated, `kl`,
///   `entropy`, advantage statistics, `tokens_seen`, `tokens_per_s`, ...); step 0 is the warm-started policy;
/// * `summary.json` — `task`, `method`, `seed`, `initial_accuracy`, `final_accuracy`, `steps`, `seconds`, ...;
/// * `checkpoint/` — everything needed to resume (see `RLCheckpoint`); re-running the same command on the
///   same folder resumes from it and continues exactly as if never stopped.
public enum TrainingRun {
    public struct Summary: Sendable {
        public var json: [String: JSONValue]
        public var record: RunRecord
    }

    /// Trains (or resumes) one run into `out`. `progress(step, total, line)` is called after every step.
    /// `stopAfterStep` ends the call after that step without finishing (tests use it to stand in for a kill).
    public static func run(config: RLConfig, out: URL, warmStartCache: URL? = nil, stopAfterStep: Int? = nil,
                           log: (String) -> Void = { _ in },
                           progress: (Int, Int, [String: JSONValue]) -> Void = { _, _, _ in }) throws -> Summary {
        let fm = FileManager.default
        try fm.createDirectory(at: out, withIntermediateDirectories: true)
        let metricsURL = out.appendingPathComponent("metrics.jsonl")
        let trainer: RLTrainer
        if let resumed = try RLCheckpoint.load(out: out, config: config) {
            trainer = resumed
            try truncateMetrics(metricsURL, toStep: trainer.step)
            log("resuming \(config.method) seed \(config.seed) from step \(trainer.step)")
        } else {
            trainer = try RLTrainer(config: config, warmStartCache: warmStartCache ?? out.appendingPathComponent("warmstart"), log: log)
            try? fm.removeItem(at: metricsURL)
            try append(trainer.evaluateInitial(), to: metricsURL)
            try RLCheckpoint.save(trainer, out: out)
        }
        while trainer.step < config.steps {
            let line = try trainer.trainStep()
            try append(line, to: metricsURL)
            progress(trainer.step, config.steps, line)
            if trainer.step % config.checkpointEvery == 0 || trainer.step == config.steps {
                try RLCheckpoint.save(trainer, out: out)
            }
            if let stop = stopAfterStep, trainer.step >= stop { return try summarize(trainer, metricsURL: metricsURL) }
        }
        let summary = try summarize(trainer, metricsURL: metricsURL)
        try JSONValue.object(summary.json).serialized().write(to: out.appendingPathComponent("summary.json"))
        return summary
    }

    static func summarize(_ t: RLTrainer, metricsURL: URL) throws -> Summary {
        let lines = try readMetrics(metricsURL)
        var metrics = [StepMetrics]()
        for l in lines {
            metrics.append(StepMetrics(step: Int(l["step"]?.doubleValue ?? 0), tokensSeen: Int(l["tokens_seen"]?.doubleValue ?? 0),
                                       accuracy: l["accuracy"]?.doubleValue, rewardMean: l["reward_mean"]?.doubleValue ?? 0,
                                       kl: l["kl"]?.doubleValue ?? 0, entropy: l["entropy"]?.doubleValue ?? 0))
        }
        let record = RunRecord(method: t.config.method, seed: t.config.seed, metrics: metrics, wallSeconds: t.elapsed)
        func num(_ x: Double?) -> JSONValue { x.map(JSONValue.number) ?? .null }
        let json: [String: JSONValue] = [
            "task": .string(t.config.task), "method": .string(t.config.method), "seed": .number(Double(t.config.seed)),
            "initial_accuracy": num(t.initialAccuracy), "final_accuracy": num(t.lastAccuracy),
            "steps": .number(Double(t.step)), "seconds": .number(t.elapsed), "tokens_seen": .number(Double(t.tokensSeen)),
            "estimator": .string(t.recipe.estimator), "loss": .string(t.recipe.loss),
            "parameters": .number(Double(t.policy.config.parameterCount)),
            "peak_rss_mb": .number(peakResidentMegabytes()),
        ]
        return Summary(json: json, record: record)
    }

    static func append(_ line: [String: JSONValue], to url: URL) throws {
        var data = try JSONValue.object(line).serialized()
        data.append(0x0A)
        if let h = try? FileHandle(forWritingTo: url) {
            defer { try? h.close() }
            try h.seekToEnd()
            try h.write(contentsOf: data)
        } else {
            try data.write(to: url)
        }
    }

    static func readMetrics(_ url: URL) throws -> [[String: JSONValue]] {
        guard let d = FileManager.default.contents(atPath: url.path) else { return [] }
        return try RolloutJSONL.parseLines(d)
    }

    /// Drops lines after `step` (written after the checkpoint a resumed run restarts from) and a torn last line.
    static func truncateMetrics(_ url: URL, toStep step: Int) throws {
        guard let d = FileManager.default.contents(atPath: url.path) else { return }
        var kept = [[String: JSONValue]]()
        for line in d.split(separator: 0x0A) {
            guard let v = try? JSONValue.parse(Data(line)), let o = v.objectValue,
                  let s = o["step"]?.doubleValue, Int(s) <= step else { continue }
            kept.append(o)
        }
        try RolloutJSONL.write(kept).write(to: url)
    }
}

/// Process-wide resident-memory high-water mark in MB (Linux `ru_maxrss` is in KiB).
func peakResidentMegabytes() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return (Double(u.ru_maxrss) / 1024 * 10).rounded() / 10
}
