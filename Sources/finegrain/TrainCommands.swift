import ArgumentParser
import FineGrain
import FineGrainTrainer
import Foundation

/// Options shared by `train` and `compare`.
struct TrainOptions: ParsableArguments {
    @Option(help: "Task: \(TaskCatalog.names.joined(separator: ", ")).") var task = "addition"
    @Option(name: .customLong("task-param"), help: "Task parameter key=value (addition: digits, carry; path: layers, width).")
    var taskParams: [String] = []
    @Option(name: .customLong("estimator-param"), help: "Estimator parameter key=value over the method's defaults (repeatable).")
    var estimatorParams: [String] = []
    @Option(help: "RL steps.") var steps: Int?
    @Option(help: "Prompts per step.") var prompts: Int?
    @Option(help: "Samples per prompt (group size).") var group: Int?
    @Option(help: "Policy learning rate.") var lr: Float?
    @Option(help: "k3 KL coefficient to the reference.") var klCoef: Double?
    @Option(help: "Evaluate every N steps.") var evalEvery: Int?
    @Option(help: "Warm-start (supervised) steps.") var warmStartSteps: Int?
    @Option(help: "Warm-start demonstration noise (probability a step is corrupted).") var warmStartNoise: Double?
    @Option(help: "Warm-start batch size.") var warmStartBatch: Int?
    @Option(help: "Evaluation problems.") var evalProblems: Int?
    @Option(help: "Checkpoint every N steps.") var checkpointEvery: Int?
    @Option(help: "Learning rate of the critic / implicit PRM.") var auxLr: Float?
    @Option(help: "Model width.") var dModel: Int?
    @Option(help: "Model layers.") var layers: Int?
    @Option(help: "Attention heads.") var heads: Int?

    func config() throws -> RLConfig {
        var c = RLConfig()
        c.task = task
        for item in taskParams {
            guard let eq = item.firstIndex(of: "=") else { throw ValidationError("--task-param expects key=value, got '\(item)'") }
            c.taskParameters[String(item[..<eq])] = String(item[item.index(after: eq)...])
        }
        for item in estimatorParams {
            guard let eq = item.firstIndex(of: "=") else { throw ValidationError("--estimator-param expects key=value, got '\(item)'") }
            c.estimatorParameters[String(item[..<eq])] = String(item[item.index(after: eq)...])
        }
        if let steps { c.steps = steps }
        if let prompts { c.promptsPerStep = prompts }
        if let group { c.groupSize = group }
        if let lr { c.learningRate = lr }
        if let klCoef { c.klCoef = klCoef }
        if let evalEvery { c.evalEvery = evalEvery }
        if let warmStartSteps { c.warmStartSteps = warmStartSteps }
        if let warmStartNoise { c.warmStartNoise = warmStartNoise }
        if let warmStartBatch { c.warmStartBatch = warmStartBatch }
        if let evalProblems { c.evalProblems = evalProblems }
        if let checkpointEvery { c.checkpointEvery = checkpointEvery }
        if let auxLr { c.auxLearningRate = auxLr }
        if let dModel { c.dModel = dModel }
        if let layers { c.nLayers = layers }
        if let heads { c.nHeads = heads }
        return c
    }
}

/// A one-line progress bar on stderr.
func progressBar(_ label: String, _ step: Int, _ total: Int, _ line: [String: JSONValue]) {
    let width = 24, filled = total > 0 ? width * step / total : width
    let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
    var text = "\r\(label) [\(bar)] \(step)/\(total)"
    if let r = line["reward_mean"]?.doubleValue { text += String(format: " reward %.2f", r) }
    if let a = line["accuracy"]?.doubleValue { text += String(format: " acc %.3f", a) }
    if let t = line["tokens_per_s"]?.doubleValue { text += String(format: " %.0f tok/s", t) }
    FileHandle.standardError.write(Data((text + "   ").utf8))
    if step == total { FileHandle.standardError.write(Data("\n".utf8)) }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "RL-fine-tune the embedded policy on a synthetic task with one credit-assignment method.",
        discussion: "Writes DIR/metrics.jsonl, DIR/summary.json and DIR/checkpoint/. Re-running the same command on the same --out resumes from the checkpoint.")

    @OptionGroup var options: TrainOptions
    @Option(help: "Method: \(MethodRecipe.names.joined(separator: ", ")), or any registered estimator.") var method = "grpo"
    @Option(help: "Seed.") var seed: UInt64 = 0
    @Option(help: "Output folder.") var out = "out/train"

    func run() throws {
        do {
            var c = try options.config()
            c.method = method; c.seed = seed
            let url = URL(fileURLWithPath: out)
            let s = try TrainingRun.run(config: c, out: url, log: { CLILog.logger.info("\($0)") }) { step, total, line in
                progressBar("\(method)", step, total, line)
            }
            let a0 = s.json["initial_accuracy"]?.doubleValue ?? .nan, a1 = s.json["final_accuracy"]?.doubleValue ?? .nan
            print(String(format: "%@ on %@ (seed %llu): accuracy %.3f before RL, %.3f after %d steps (%.0f s). Wrote %@/summary.json",
                         method, c.task, seed, a0, a1, Int(s.json["steps"]?.doubleValue ?? 0), s.json["seconds"]?.doubleValue ?? 0, out))
        } catch let e as FineGrainError {
            throw CLIError(e)
        }
    }
}

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train several methods over several seeds and write an HTML report with learning curves.")

    @OptionGroup var options: TrainOptions
    @Option(help: "Comma-separated methods.") var methods = "grpo,pure,fg_rlhf,tempo"
    @Option(help: "Number of seeds (0..<K).") var seeds = 2
    @Option(help: "Target accuracy for steps-to-target (absolute, e.g. 0.6); default: initial + 0.2.") var target: Double?
    @Option(help: "Output folder.") var out = "out/compare"

    func run() throws {
        do {
            let c = try options.config()
            let names = methods.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            guard seeds >= 1 else { throw ValidationError("--seeds must be >= 1") }
            let paths = try Comparison.run(base: c, methods: names, seeds: (0 ..< seeds).map(UInt64.init), out: URL(fileURLWithPath: out),
                                           target: target.map(AccuracyTarget.absolute) ?? .aboveInitial(0.2),
                                           log: { CLILog.logger.info("\($0)") }, progress: progressBar)
            print("Report: \(paths.first { $0.hasSuffix(".html") } ?? out + "/report.html")")
            for p in paths where !p.hasSuffix(".html") { print("        \(p)") }
        } catch let e as FineGrainError {
            throw CLIError(e)
        }
    }
}
