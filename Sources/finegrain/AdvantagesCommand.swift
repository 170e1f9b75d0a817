import ArgumentParser
import FineGrain
import Foundation

struct Advantages: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compute per-token advantages for a rollout JSONL file with any registered estimator.",
        discussion: "Each output line is the input line plus \"advantages\" (and \"returns\" where defined). Diagnostics go to stderr."
    )

    @Option(name: .long, help: "Estimator name (see `finegrain methods`).")
    var estimator: String

    @Option(name: .customLong("param"), help: "Estimator parameter key=value (repeatable).")
    var params: [String] = []

    @Option(name: .long, help: "Input rollout JSONL (default: stdin).")
    var input: String?

    @Option(name: .long, help: "Output JSONL (default: stdout).")
    var output: String?

    func run() throws {
        do {
            let p = try parseParams(params)
            let doc = try RolloutJSONL.read(try readInput(input))
            let out = try Registry.advantages(estimator, batch: doc.batch, params: p)
            try writeOutput(try RolloutJSONL.write(RolloutJSONL.annotate(doc, with: out)), to: output)
            if !out.diagnostics.isEmpty {
                let diag = out.diagnostics.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                CLILog.logger.info("\(estimator): \(doc.batch.count) responses, \(doc.batch.tokenCount) tokens; \(diag)")
            }
        } catch let e as FineGrainError {
            throw CLIError(e)
        }
    }
}
